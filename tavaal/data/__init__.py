"""Dataset readers, row sources and the labeled/unlabeled pool bookkeeping.

``load_dataset(name, data_dir=None, seed=0, **options) -> DatasetBundle`` (see
docs/CONTRACTS.md); ``DATASETS`` lists the names with their defaults; ``Pool`` keeps the
labeled / unlabeled indices (the label state); ``open_source(path)`` gives the row source
(:mod:`.sources`) that training, selection and scoring read."""

from .bundle import ArrayDataset, DatasetBundle
from .errors import (BudgetExceededError, CorruptDatasetError, DataError,
                     DatasetNotFoundError, PoolIndexError)
from .candidates import check_budget, draw_candidates
from .imagefiles import IMAGE_EXTENSIONS, MASK_EXTENSIONS, decode_image, identity_lookup, read_mask
from .pool import Pool
from .seg_transforms import PairedCompose, PairedRandomCrop, PairedRandomHorizontalFlip
from .open import dataset_source, open_source
from .sources import (ArraySource, DatasetSource, ImageFolderSource, MaskSourceDataset, RowSource, ShardedSource,
                      SourceDataset, SourceError, channel_stats)
from .registry import ALIASES, DATASETS, DatasetSpec, available_datasets, get_spec, load_dataset
from .transforms import (Augmented, Compose, Normalize, RandomCropWithPadding,
                         RandomHorizontalFlip, RandomResizedCrop, Resize)

__all__ = [
    "load_dataset", "DatasetBundle", "DatasetSpec", "DATASETS", "ALIASES", "available_datasets",
    "get_spec", "Pool", "check_budget", "ArrayDataset",
    "DataError", "DatasetNotFoundError", "CorruptDatasetError", "PoolIndexError",
    "BudgetExceededError", "Augmented", "Compose", "Normalize", "RandomCropWithPadding",
    "RandomHorizontalFlip", "RandomResizedCrop", "Resize",
    "open_source", "RowSource", "ArraySource", "ShardedSource", "ImageFolderSource", "DatasetSource",
    "SourceDataset", "MaskSourceDataset", "SourceError", "channel_stats", "dataset_source",
    "PairedCompose", "PairedRandomCrop", "PairedRandomHorizontalFlip",
    "draw_candidates", "IMAGE_EXTENSIONS", "MASK_EXTENSIONS", "decode_image", "read_mask", "identity_lookup",
]

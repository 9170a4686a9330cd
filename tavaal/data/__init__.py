"""Dataset readers, row sources and the labeled/unlabeled pool bookkeeping.

``load_dataset(name, data_dir=None, seed=0, **options) -> DatasetBundle`` (see
docs/CONTRACTS.md); ``DATASETS`` lists the names with their defaults; ``Pool`` keeps the
labeled / unlabeled indices (the label state); ``open_source(path)`` gives the row source
(:mod:`.sources`) that training, selection and scoring read."""

from .bundle import ArrayDataset, DatasetBundle
from .defaults import compute_stats
from .errors import (BudgetExceededError, CorruptDatasetError, DataError,
                     DatasetNotFoundError, PoolIndexError)
from .pool import Pool, check_budget
from .readers.folder import FolderDataset
from .readers.segfolder import SegmentationDataset
from .seg_transforms import PairedCompose, PairedRandomCrop, PairedRandomHorizontalFlip
from .sources import (ArraySource, DatasetSource, ImageFolderSource, RowSource, ShardedSource, SourceDataset,
                      SourceError, channel_stats, open_source)
from .registry import ALIASES, DATASETS, DatasetSpec, available_datasets, get_spec, load_dataset
from .transforms import (Augmented, Compose, Normalize, RandomCropWithPadding,
                         RandomHorizontalFlip, RandomResizedCrop, Resize)

__all__ = [
    "load_dataset", "DatasetBundle", "DatasetSpec", "DATASETS", "ALIASES", "available_datasets",
    "get_spec", "Pool", "check_budget", "ArrayDataset", "FolderDataset", "compute_stats",
    "DataError", "DatasetNotFoundError", "CorruptDatasetError", "PoolIndexError",
    "BudgetExceededError", "Augmented", "Compose", "Normalize", "RandomCropWithPadding",
    "RandomHorizontalFlip", "RandomResizedCrop", "Resize",
    "open_source", "RowSource", "ArraySource", "ShardedSource", "ImageFolderSource", "DatasetSource",
    "SourceDataset", "SourceError", "channel_stats",
    "SegmentationDataset", "PairedCompose", "PairedRandomCrop", "PairedRandomHorizontalFlip",
]

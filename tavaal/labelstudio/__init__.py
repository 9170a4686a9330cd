"""Label Studio as a partner of the labeling loop, through its API (the official
``label-studio-sdk``; install with ``pip install "tavaal[labelstudio]"``).

* :func:`connect` -- a server URL (``--label-studio`` / ``LABEL_STUDIO_URL``) and a token
  (``LABEL_STUDIO_API_KEY``: legacy token or personal access token).
* :func:`prepare_push` / :func:`push_batch` -- a batch as tasks with predictions, images
  addressed so the server serves them (:class:`ImageAddressing`), no duplicates.
* :func:`pull_labels` / :func:`pull_masks` -- the project's annotations, read with the same
  registry and disagreement policy as label files (:mod:`tavaal.data.labelfiles`).
* :mod:`.record` -- what the work directory remembers (the addressing of each project).

This package knows nothing of work directories' internals; :mod:`tavaal.loop.labelstudio` uses
it for ``tavaal select|label ... --label-studio URL --project ID``. See docs/label-studio.md.
"""
from .addressing import ImageAddressing, check_served, ensure_local_storage
from .brush import mask_to_regions, regions_to_mask
from .connection import EXTRA_HINT, TOKEN_ENV, URL_ENV, Connection, LabelStudioError, connect, require_sdk
from .interface import ProjectInterface
from .pull import PulledMasks, pull_labels, pull_masks, source_name
from .push import OutgoingSample, PushReport, PushTarget, model_version, prepare_push, push_batch
from .record import RECORD_NAME, ProjectRecord, read_project_record, write_project_record

__all__ = ["ImageAddressing", "check_served", "ensure_local_storage", "mask_to_regions", "regions_to_mask",
           "TOKEN_ENV", "URL_ENV", "Connection", "connect", "require_sdk", "EXTRA_HINT", "LabelStudioError",
           "ProjectInterface", "PulledMasks", "pull_labels", "pull_masks", "source_name", "OutgoingSample",
           "PushReport", "PushTarget", "model_version", "prepare_push", "push_batch", "RECORD_NAME", "ProjectRecord",
           "read_project_record", "write_project_record"]

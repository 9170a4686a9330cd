"""What a project's labeling config asks for, read with the SDK's ``LabelInterface``.

Classification needs one ``Choices`` control (its name is the ``from_name`` of predictions and
answers); segmentation one ``BrushLabels`` control. An ``Image`` object's ``value`` (``$image``)
names the task data field the image URL goes in.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

from .connection import Connection, LabelStudioError

__all__ = ["ProjectInterface"]


@dataclass(frozen=True)
class ProjectInterface:
    """The controls tavaal uses in a project: ``control`` (Choices or BrushLabels name) on
    ``to_name``, its ``labels`` (class names in the config's order), ``kind`` ("choices" or
    "brush"), and ``image_field`` (the data field of the Image object it labels; None when the
    object is not an image)."""

    control: str
    to_name: str
    labels: List[str]
    kind: str
    image_field: Optional[str]

    @classmethod
    def from_config(cls, label_config: str, kind: str = "choices") -> "ProjectInterface":
        """Read ``label_config`` (XML) for a ``kind`` ("choices" or "brush") control. Raises
        :class:`LabelStudioError` when the config has none, or several (ambiguous)."""
        from label_studio_sdk.label_interface import LabelInterface

        wanted = {"choices": "Choices", "brush": "BrushLabels"}[kind]
        try:
            interface = LabelInterface(label_config)
        except Exception as exc:  # the SDK raises several types for a bad config
            raise LabelStudioError(f"cannot read the project's labeling config ({exc})") from None
        controls = [c for c in interface.controls if c.tag == wanted]
        if len(controls) != 1:
            have = ", ".join(f"{c.tag} {c.name!r}" for c in interface.controls) or "no control"
            raise LabelStudioError(f"the project's labeling config needs exactly one {wanted} control for tavaal, "
                                   f"it has {have}" + (" (ambiguous)" if controls else ""))
        control = controls[0]
        to_name = control.to_name[0]
        target = {o.name: o for o in interface.objects}.get(to_name)
        image = target is not None and target.tag == "Image" and str(target.value).startswith("$")
        return cls(control.name, to_name, list(control.labels or []), kind, str(target.value)[1:] if image else None)

    @classmethod
    def of_project(cls, connection: Connection, project: int, kind: str) -> "ProjectInterface":
        """:meth:`from_config` of ``project``'s labeling config, read through ``connection``."""
        info = connection.call(f"reading project {project}", connection.sdk.projects.get, id=int(project))
        return cls.from_config(info.label_config or "", kind)

    def check_classes(self, classes: List[str]) -> List[str]:
        """Warnings for the work directory's ``classes`` the control does not offer (annotators
        cannot pick them) -- for Choices controls with fixed choices."""
        missing = [c for c in classes if self.labels and c not in self.labels]
        return [f"the project's {self.control!r} control does not offer the class(es) {', '.join(missing)}: "
                "annotators cannot pick them (add them to the labeling config)"] if missing else []

"""The class list of a work directory (label files themselves: tests/test_labelfiles_*.py)."""
import pytest

from tavaal.loop import LoopError
from tavaal.loop.classes import natural_order, parse_classes


def test_class_list_order_is_natural_and_explicit_lists_are_checked(tmp_path):
    assert natural_order(["10", "2", "1", "2"]) == ["1", "2", "10"]
    assert natural_order(["dog", "cat"]) == ["cat", "dog"]
    assert parse_classes("cat, dog,bird") == ["cat", "dog", "bird"]
    (tmp_path / "classes.txt").write_text("a\nb\n\nc\n")
    assert parse_classes(f"@{tmp_path / 'classes.txt'}") == ["a", "b", "c"]
    with pytest.raises(LoopError, match="more than once"):
        parse_classes("a,b,a")
    with pytest.raises(LoopError, match="empty class names"):
        parse_classes("a,,b")

"""The Label Studio front-end without a server: the missing-extra error, the connection settings,
image addressing and its way back, the labeling-config reading, brush masks, the work directory's
record. (Against a real server: tests/test_labelstudio_server.py, marked slow.)"""
import sys

import numpy as np
import pytest

from tavaal.labelstudio import (EXTRA_HINT, ImageAddressing, LabelStudioError, ProjectRecord, connect, read_project_record,
                                write_project_record)
from tavaal.labelstudio.record import workdir_locations


def test_without_the_sdk_every_entry_point_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "label_studio_sdk", None)  # import label_studio_sdk now raises ImportError
    with pytest.raises(LabelStudioError, match=r'pip install "tavaal\[labelstudio\]"'):
        connect("http://localhost:8080", "token")
    assert EXTRA_HINT == 'pip install "tavaal[labelstudio]"'


def test_the_url_and_token_come_from_flags_or_the_environment_and_missing_ones_are_named(monkeypatch):
    pytest.importorskip("label_studio_sdk")
    monkeypatch.delenv("LABEL_STUDIO_URL", raising=False)
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    with pytest.raises(LabelStudioError, match="--label-studio URL or set LABEL_STUDIO_URL"):
        connect()
    with pytest.raises(LabelStudioError, match="not an http"):
        connect("localhost:8080", "t")
    monkeypatch.setenv("LABEL_STUDIO_URL", "http://127.0.0.1:9")
    with pytest.raises(LabelStudioError, match="set LABEL_STUDIO_API_KEY"):
        connect()


def test_an_unreachable_server_is_one_clear_error():
    pytest.importorskip("label_studio_sdk")
    with pytest.raises(LabelStudioError, match="cannot be reached"):
        connect("http://127.0.0.1:9", "token")  # port 9 (discard): nothing listens


def test_local_files_urls_are_relative_to_the_document_root_and_map_back_to_sample_ids(tmp_path):
    pool = tmp_path / "root" / "pools" / "cats and dogs"
    pool.mkdir(parents=True)
    addressing = ImageAddressing.for_pool(str(pool), image_root=str(tmp_path / "root"))
    url = addressing.url("sub/é 1.png")
    assert url == "/data/local-files/?d=pools/cats%20and%20dogs/sub/%C3%A9%201.png"
    assert addressing.locations().sample_id(url) == "sub/é 1.png"
    assert addressing.locations().sample_id("http://ls:8080" + url) == "sub/é 1.png"
    assert ImageAddressing.from_record(addressing.to_record()) == addressing


def test_an_image_url_prefix_gives_prefix_plus_id():
    addressing = ImageAddressing.for_pool("/pool", url_prefix="https://cdn.example/p/")
    assert addressing.url("a b.png") == "https://cdn.example/p/a%20b.png"
    assert addressing.locations().sample_id("https://cdn.example/p/a%20b.png") == "a b.png"


def test_the_image_root_must_be_a_proper_parent_of_the_pool_and_one_way_is_needed(tmp_path):
    (tmp_path / "pool").mkdir()
    for root in (tmp_path / "pool", tmp_path / "elsewhere"):
        with pytest.raises(LabelStudioError, match="must be a parent folder of the pool"):
            ImageAddressing.for_pool(str(tmp_path / "pool"), image_root=str(root))
    with pytest.raises(LabelStudioError, match="--image-root DIR .* or --image-url-prefix URL"):
        ImageAddressing.for_pool(str(tmp_path / "pool"))
    with pytest.raises(LabelStudioError, match="one of them"):
        ImageAddressing.for_pool(str(tmp_path / "pool"), image_root=str(tmp_path), url_prefix="http://x/")


def test_the_labeling_config_gives_the_choices_control_its_classes_and_the_image_field():
    pytest.importorskip("label_studio_sdk")
    from tavaal.labelstudio import ProjectInterface

    config = ('<View><Image name="img" value="$photo"/><Choices name="species" toName="img">'
              '<Choice value="cat"/><Choice value="dog"/></Choices></View>')
    interface = ProjectInterface.from_config(config)
    assert (interface.control, interface.to_name, interface.labels, interface.image_field) == (
        "species", "img", ["cat", "dog"], "photo")
    assert interface.check_classes(["cat", "bird"]) and not interface.check_classes(["dog"])
    two = config.replace("</View>", '<Choices name="q" toName="img"><Choice value="ok"/></Choices></View>')
    with pytest.raises(LabelStudioError, match="exactly one Choices control.*ambiguous"):
        ProjectInterface.from_config(two)
    text = '<View><Text name="row" value="$tavaal_id"/><Choices name="c" toName="row"><Choice value="a"/></Choices></View>'
    assert ProjectInterface.from_config(text).image_field is None


def test_masks_round_trip_through_label_studio_brush_rle():
    pytest.importorskip("label_studio_sdk")
    from tavaal.labelstudio import mask_to_regions, regions_to_mask

    mask = np.full((6, 9), 255, np.uint8)
    mask[1:4, 2:6] = 0
    mask[5, :] = 2
    regions = mask_to_regions(mask, ["road", "car", "sky"], "tag", "image")
    assert [r["value"]["brushlabels"] for r in regions] == [["road"], ["sky"]]
    assert all(r["type"] == "brushlabels" and r["value"]["format"] == "rle" for r in regions)
    back, problems = regions_to_mask(regions, ["road", "car", "sky"], shape=(6, 9))
    assert problems == [] and np.array_equal(back, mask)
    _, problems = regions_to_mask(regions, ["road", "car"], shape=(6, 9))
    assert any("expected one of the classes" in p for p in problems)
    _, problems = regions_to_mask(regions, ["road", "car", "sky"], shape=(9, 6))
    assert any("the image is 6x9" in p for p in problems)


def test_the_record_keeps_each_projects_addressing_and_pushes(tmp_path):
    record = read_project_record(tmp_path, "http://ls:8080/", 3)
    assert record.addressing is None and record.pushes == []
    assert workdir_locations(tmp_path, "/pool").pool_root == "/pool"
    (tmp_path / "root" / "pool").mkdir(parents=True)
    record.addressing = ImageAddressing.for_pool(str(tmp_path / "root" / "pool"), image_root=str(tmp_path / "root"))
    record.add_push(0, 1, [11, 12], already=0)
    write_project_record(tmp_path, record)
    again = read_project_record(tmp_path, "http://ls:8080", 3)
    assert again.addressing == record.addressing and again.pushes[0]["task_ids"] == [11, 12]
    assert workdir_locations(tmp_path, "/pool").document_root == str(tmp_path / "root")
    assert isinstance(again, ProjectRecord)

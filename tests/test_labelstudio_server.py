"""Against a real Label Studio 1.23.2 server: two cycles of the labeling loop with a project.

The server is installed into a throwaway virtualenv under ``build/`` (kept, with a migrated empty
database, so reruns start in seconds; skipped with the reason when it cannot be installed),
started on 127.0.0.1 on a free port with local-files serving, and stopped at the end. The test
posts annotations through the REST API as the UI does (submit, skip, update), and checks: the
images served are the files' bytes, predictions are present, a skipped task stays out for
labeling, a changed annotation is merged as changed, a second push creates no duplicates, a
correction is refused without --relabel and applied with it, a task without tavaal_id (as a
storage sync makes them) is matched by its ``?d=`` path, and Label Studio's own CSV, TSV, JSON
and JSON_MIN exports merge to the same labels as the API pull. A second test sends masks as
brush pre-annotations and reads annotators' brush regions back; a third runs `tavaal select
--label-studio` on a mask work directory (the model's predicted masks arrive as brush
pre-annotations); a fourth checks the refusal of an image config for an array pool.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tavaal import cli
from tavaal.loop import Workdir

from loop_fixtures import TINY_FLAGS, digits_uint8, write_labels_csv, write_png_pool

pytestmark = pytest.mark.slow

VERSION = "1.23.2"
BUILD = Path(__file__).resolve().parents[1] / "build"
VENV = BUILD / f"labelstudio-{VERSION}-venv"
TEMPLATE_DB = BUILD / f"labelstudio-{VERSION}-empty.sqlite3"
INSTALL_TIMEOUT_S = 1800
START_TIMEOUT_S = 900
HTTP_TIMEOUT_S = 60
USER, PASSWORD, LEGACY_TOKEN = "tavaal@example.com", "tavaal-test-pw", "tavaal-legacy-token"
CONFIG = ('<View><Image name="image" value="$image"/><Choices name="choice" toName="image" choice="single">'
          + "".join(f'<Choice value="{k}"/>' for k in range(10)) + "</Choices></View>")


def _label_studio_bin() -> Path:
    """The ``label-studio`` command of the cached virtualenv (installed on first use)."""
    binary = VENV / "bin" / "label-studio"
    if binary.exists():
        return binary
    BUILD.mkdir(exist_ok=True)
    log = BUILD / f"labelstudio-{VERSION}-install.log"
    try:
        with open(log, "w") as out:
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, stdout=out, stderr=out,
                           timeout=300)
            subprocess.run([str(VENV / "bin" / "pip"), "install", f"label-studio=={VERSION}"], check=True,
                           stdout=out, stderr=out, timeout=INSTALL_TIMEOUT_S)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        shutil.rmtree(VENV, ignore_errors=True)
        tail = log.read_text()[-600:] if log.exists() else ""
        pytest.skip(f"label-studio=={VERSION} cannot be installed here ({exc}): {tail}")
    return binary


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A Label Studio process on 127.0.0.1 serving local files below ``document_root``."""

    def __init__(self, binary: Path, data_dir: Path, document_root: Path):
        self.binary, self.data_dir, self.document_root = binary, data_dir, document_root
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / "label-studio.log"
        self.process = None

    def start(self) -> None:
        env = dict(os.environ, LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED="true",
                   LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=str(self.document_root), LABEL_STUDIO_HOST="")
        self.process = subprocess.Popen(
            [str(self.binary), "start", "--no-browser", "--internal-host", "127.0.0.1", "-p", str(self.port),
             "--data-dir", str(self.data_dir), "--username", USER, "--password", PASSWORD, "--user-token",
             LEGACY_TOKEN], stdout=open(self.log, "a"), stderr=subprocess.STDOUT, env=env)
        import httpx

        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"Label Studio exited with {self.process.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(2)
        self.stop()
        pytest.fail(f"Label Studio did not answer within {START_TIMEOUT_S} s: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self.process = None


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("label_studio_sdk", reason="needs the labelstudio extra: pip install 'tavaal[labelstudio]'")
    binary = _label_studio_bin()
    base = tmp_path_factory.mktemp("label-studio")
    (base / "data").mkdir()
    (base / "root").mkdir()
    database = base / "data" / "label_studio.sqlite3"
    server = Server(binary, base / "data", base / "root")
    if TEMPLATE_DB.exists():
        shutil.copyfile(TEMPLATE_DB, database)
        server.start()
    else:  # first run: migrate once, keep the empty database for the next runs
        server.start()
        server.stop()
        shutil.copyfile(database, TEMPLATE_DB)
        server.start()
    yield server
    server.stop()


def _personal_access_token(server: Server) -> str:
    """Log in as the UI does and create a personal access token (Label Studio 1.23's default),
    then enable legacy tokens for the organization too (so both kinds can be checked)."""
    import httpx

    with httpx.Client(base_url=server.url, follow_redirects=True, timeout=HTTP_TIMEOUT_S) as web:
        web.get("/user/login/")
        web.post("/user/login/", data={"email": USER, "password": PASSWORD,
                                       "csrfmiddlewaretoken": web.cookies.get("csrftoken")},
                 headers={"Referer": server.url + "/user/login/"})
        headers = {"X-CSRFToken": web.cookies.get("csrftoken"), "Referer": server.url + "/"}
        response = web.post("/api/token/", headers=headers)
        assert response.status_code == 201, response.text
        enabled = web.post("/api/jwt/settings", headers=headers, json={
            "api_tokens_enabled": True, "legacy_api_tokens_enabled": True, "api_token_ttl_days": 36500})
        assert enabled.status_code in (200, 201), enabled.text
        return response.json()["token"]


def _choice(label):
    return [{"from_name": "choice", "to_name": "image", "type": "choices", "value": {"choices": [label]},
             "origin": "manual"}]


@pytest.fixture(scope="module")
def token(server):
    """A personal access token of the server's user (created once: Label Studio keeps one per user)."""
    return _personal_access_token(server)


def test_two_cycles_with_a_real_label_studio_project(server, token, tmp_path, monkeypatch, capsys):
    from tavaal.labelstudio import OutgoingSample, connect, push_batch
    from tavaal.loop.labelstudio import check_project

    started = time.perf_counter()
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", token)
    monkeypatch.delenv("LABEL_STUDIO_URL", raising=False)
    ls = connect(server.url)                                        # a personal access token ...
    assert connect(server.url, LEGACY_TOKEN).url == server.url      # ... and a legacy token both work
    project = ls.call("creating the project", ls.sdk.projects.create, title="tavaal digits", label_config=CONFIG).id

    pool = server.document_root / "pools" / "digits"
    images, targets = digits_uint8(60)
    ids = write_png_pool(pool, images)
    truth = {i: str(t) for i, t in zip(ids, targets)}
    seed = write_labels_csv(tmp_path / "seed.csv", [(i, truth[i]) for i in ids[:20]])
    wd_path = tmp_path / "wd"
    flags = ["--label-studio", server.url, "--project", str(project)]
    assert cli.main(["init", str(wd_path), "--pool", str(pool), "--labels", str(seed), "--classes",
                     ",".join(str(k) for k in range(10)), "--holdout", "0", *TINY_FLAGS]) == 0
    assert cli.main(["train", str(wd_path), "--no-progress"]) == 0

    # cycle 1: push -- the project's local-files storage is created, images are served, predictions present
    assert cli.main(["select", str(wd_path), "--budget", "6", "--no-progress", "--image-root",
                     str(server.document_root), *flags]) == 0
    assert "pushed 6 task(s)" in capsys.readouterr().out
    wd = Workdir(wd_path)
    batch0 = wd.state()["batches"][0]["ids"]
    tasks = sorted(ls.tasks(project), key=lambda t: t["data"]["rank"])
    assert [t["data"]["tavaal_id"] for t in tasks] == batch0
    by_hand = json.loads((wd_path / "label_studio_tasks.json").read_text())  # the fallback import file
    assert [t["data"]["image"] for t in by_hand] == [t["data"]["image"] for t in tasks]
    for t in tasks:
        status, body = ls.fetch(t["data"]["image"])
        assert status == 200 and body == (pool / t["data"]["tavaal_id"]).read_bytes()
        assert (t["data"]["batch"], t["data"]["cycle"]) == (0, 0)
        (prediction,) = t["predictions"]
        assert prediction["model_version"] == "tavaal cycle 0 tavaal"
        assert prediction["result"][0]["from_name"] == "choice" and 0 <= prediction["score"] <= 1
        assert prediction["result"][0]["value"]["choices"][0] == t["data"]["predicted"]
    snapshot = tmp_path / "wd-before-any-pull"
    shutil.copytree(wd_path, snapshot)

    # annotations as the UI posts them: one skipped, one changed before the merge, the rest submitted
    skipped, changed, corrected = tasks[0], tasks[1], tasks[2]
    ls.sdk.annotations.create(id=skipped["id"], result=[], was_cancelled=True, lead_time=1.0)
    first = ls.sdk.annotations.create(id=changed["id"], result=_choice("0" if truth[changed["data"]["tavaal_id"]] != "0"
                                                                        else "1"), was_cancelled=False, lead_time=2.0)
    ls.sdk.annotations.update(id=first.id, result=_choice(truth[changed["data"]["tavaal_id"]]))
    answers = {}
    for t in tasks[2:]:
        answers[t["data"]["tavaal_id"]] = ls.sdk.annotations.create(
            id=t["id"], result=_choice(truth[t["data"]["tavaal_id"]]), was_cancelled=False, lead_time=2.0)

    assert cli.main(["label", str(wd_path), *flags]) == 0
    out = capsys.readouterr().out
    assert "merged 5 new label(s)" in out and "1 skipped by the annotators" in out
    wd = Workdir(wd_path)
    assert all(wd.labels[i] == truth[i] for i in batch0[1:])
    assert skipped["data"]["tavaal_id"] not in wd.labels
    assert wd.status()["skipped"] == [skipped["data"]["tavaal_id"]]
    assert wd.status()["out_for_labeling"] == 1
    assert cli.main(["label", str(wd_path), *flags]) == 0  # idempotent
    assert "nothing new" in capsys.readouterr().out

    # a correction made in Label Studio after the merge: refused without --relabel, applied with it
    sample = corrected["data"]["tavaal_id"]
    new_label = "9" if truth[sample] != "9" else "8"
    ls.sdk.annotations.update(id=answers[sample].id, result=_choice(new_label))
    assert cli.main(["label", str(wd_path), *flags]) == 2
    err = capsys.readouterr().err
    assert "--relabel" in err and f"id {sample!r} is already labeled {truth[sample]!r}" in err
    assert cli.main(["label", str(wd_path), *flags, "--relabel"]) == 0
    wd = Workdir(wd_path)
    assert wd.labels[sample] == new_label
    assert [h["label"] for h in wd.state()["label_history"][sample]] == [truth[sample], new_label]

    # cycle 2: the addressing is remembered; the skipped sample stays out; a second push makes no duplicate
    assert cli.main(["train", str(wd_path), "--no-progress"]) == 0
    assert cli.main(["select", str(wd_path), "--budget", "4", "--no-progress", *flags]) == 0
    capsys.readouterr()
    wd = Workdir(wd_path)
    batch1 = wd.state()["batches"][1]["ids"]
    assert skipped["data"]["tavaal_id"] not in batch1 and not set(batch1) & set(batch0)
    # a task as a storage sync creates it (no tavaal_id): matched by its ?d= path against the recorded root
    synced = next(i for i in ids if i not in wd.labels and i not in batch0 + batch1)
    (synced_task,) = ls.call("importing a synced-style task", ls.sdk.projects.import_tasks, id=project,
                             request=[{"data": {"image": f"/data/local-files/?d=pools/digits/{synced}"}}],
                             return_task_ids=True).task_ids
    link = check_project(wd, server.url, project)  # the addressing recorded at the first push
    everything = batch0 + batch1 + [synced]
    again = push_batch(link.target, [OutgoingSample(i, r, None) for r, i in enumerate(everything)], batch=1, cycle=1,
                       method="tavaal", classes=wd.state()["classes"])
    assert again.pushed == [] and sorted(again.already) == sorted(everything)
    tasks = list(ls.tasks(project))
    assert len(tasks) == 11 and len({t["data"].get("tavaal_id", t["data"]["image"]) for t in tasks}) == 11
    for t in tasks:
        if t["data"].get("tavaal_id") in batch1:
            assert t["predictions"][0]["model_version"] == "tavaal cycle 1 tavaal"
            ls.sdk.annotations.create(id=t["id"], result=_choice(truth[t["data"]["tavaal_id"]]), was_cancelled=False)
    ls.sdk.annotations.create(id=synced_task, result=_choice(truth[synced]), was_cancelled=False)
    assert cli.main(["label", str(wd_path), *flags]) == 0
    assert "merged 5 new label(s)" in capsys.readouterr().out
    assert Workdir(wd_path).labels[synced] == truth[synced]
    final = Workdir(wd_path).labels

    # Label Studio's own exports, merged into the work directory as it was before any pull, give the same labels
    for export_type, suffix in (("JSON", ".json"), ("JSON_MIN", ".json"), ("CSV", ".csv"), ("TSV", ".tsv")):
        status, body = ls.fetch(f"/api/projects/{project}/export?exportType={export_type}")
        assert status == 200, body[:300]
        path = tmp_path / f"export-{export_type}{suffix}"
        path.write_bytes(body)
        copy = tmp_path / f"wd-{export_type}"
        shutil.copytree(snapshot, copy)
        assert cli.main(["label", str(copy), str(path)]) == 0, capsys.readouterr().err
        capsys.readouterr()
        assert Workdir(copy).labels == final, export_type
        if export_type == "JSON":  # the flat exports leave skipped tasks out; JSON names them
            assert Workdir(copy).status()["skipped"] == [skipped["data"]["tavaal_id"]]
    print(f"\nLabel Studio two-cycle test: {time.perf_counter() - started:.1f} s after the server started")



def test_segmentation_masks_travel_as_brush_regions_through_a_real_server(server, token, tmp_path, monkeypatch,
                                                                         capsys):
    """Masks go out as brush pre-annotations (RLE) and annotators' brush regions come back as masks."""
    import numpy as np
    from PIL import Image

    from tavaal.labelstudio import OutgoingSample, connect, push_batch
    from tavaal.loop.labelstudio import check_project

    monkeypatch.setenv("LABEL_STUDIO_API_KEY", token)
    ls = connect(server.url)
    classes = ["background", "road", "car"]
    config = ('<View><Image name="image" value="$image"/><BrushLabels name="tag" toName="image">'
              + "".join(f'<Label value="{c}"/>' for c in classes) + "</BrushLabels></View>")
    project = ls.call("creating the project", ls.sdk.projects.create, title="tavaal streets", label_config=config).id
    pool, masks = server.document_root / "pools" / "streets", tmp_path / "masks"
    rng = np.random.default_rng(0)
    truth = {}
    for k in range(6):
        image = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
        mask = np.full((12, 16), 255, np.uint8)
        mask[: 4 + k, :] = 0
        mask[8:, 2 + k: 9 + k] = 1 + k % 2
        pool.mkdir(parents=True, exist_ok=True)
        masks.mkdir(exist_ok=True)
        Image.fromarray(image).save(pool / f"s{k}.png")
        truth[f"s{k}.png"] = mask
    for k in range(2):
        Image.fromarray(truth[f"s{k}.png"], mode="L").save(masks / f"s{k}.png")
    wd = Workdir.init(tmp_path / "wd", pool, masks=masks, classes=classes, holdout=0)
    link = check_project(wd, server.url, project, image_root=str(server.document_root))
    assert link.target.interface.kind == "brush"
    samples = [OutgoingSample(f"s{k}.png", r, 0.5, mask=truth[f"s{k}.png"]) for r, k in enumerate(range(2, 6))]
    report = push_batch(link.target, samples, batch=0, cycle=0, method="entropy", classes=classes)
    assert len(report.task_ids) == 4
    tasks = {t["data"]["tavaal_id"]: t for t in ls.tasks(project)}
    from tavaal.labelstudio import regions_to_mask

    for ident, t in tasks.items():  # the pre-annotation decodes to the mask that was sent
        (prediction,) = t["predictions"]
        decoded, problems = regions_to_mask(prediction["result"], classes, "tag", shape=(12, 16))
        assert problems == [] and np.array_equal(decoded, truth[ident])
    from tavaal.labelstudio import mask_to_regions

    for ident in ("s2.png", "s3.png"):  # annotators paint the masks, as the UI posts brush regions
        ls.sdk.annotations.create(id=tasks[ident]["id"], result=mask_to_regions(truth[ident], classes, "tag", "image"),
                                  was_cancelled=False)
    ls.sdk.annotations.create(id=tasks["s4.png"]["id"], result=[], was_cancelled=True)
    assert cli.main(["label", str(wd.root), "--label-studio", server.url, "--project", str(project)]) == 0
    out = capsys.readouterr().out
    assert "merged 2 new label(s)" in out and "1 skipped" in out
    stored = Workdir(wd.root).state()["masks"]
    assert set(stored) == {"s0.png", "s1.png", "s2.png", "s3.png"}
    for ident in ("s2.png", "s3.png"):
        saved = np.asarray(Image.open(wd.root / Workdir(wd.root).labels[ident]))
        assert np.array_equal(saved, truth[ident])


def test_select_on_a_mask_work_directory_sends_the_predicted_masks_as_brush_pre_annotations(server, token, tmp_path,
                                                                                          monkeypatch, capsys):
    """`tavaal select --label-studio` on a segmentation work directory: each pushed task carries the
    task model's argmax mask (recomputed here from the checkpoint) as a brush pre-annotation."""
    import numpy as np
    import torch
    from PIL import Image

    from tavaal.checkpoint import load_cycle_models
    from tavaal.data.readers.segshapes import write_segfolder_layout
    from tavaal.labelstudio import connect, regions_to_mask

    monkeypatch.setenv("LABEL_STUDIO_API_KEY", token)
    ls = connect(server.url)
    scenes = server.document_root / "pools" / "scenes"
    write_segfolder_layout(scenes, num_images=10, image_size=(32, 64), seed=5)
    classes = (scenes / "classes.txt").read_text().split()
    seed = tmp_path / "seed"
    seed.mkdir()
    for mask in sorted((scenes / "masks").glob("*.png"))[:4]:
        shutil.copy(mask, seed / mask.name)
    config = ('<View><Image name="image" value="$image"/><BrushLabels name="tag" toName="image">'
              + "".join(f'<Label value="{c}"/>' for c in classes) + "</BrushLabels></View>")
    project = ls.call("creating the project", ls.sdk.projects.create, title="tavaal scenes", label_config=config).id
    wd_path = tmp_path / "wd"
    assert cli.main(["init", str(wd_path), "--pool", str(scenes / "images"), "--masks", str(seed), "--classes",
                     ",".join(classes), "--holdout", "0", "--arch", "drn-d-small", "--width", "8", "--epochs", "1",
                     "--batch-size", "4", "--latent-dim", "8", "--wae-iterations", "2", "--set", "wae_width=8",
                     "--set", "num_threads=1"]) == 0
    assert cli.main(["train", str(wd_path), "--no-progress"]) == 0
    assert cli.main(["select", str(wd_path), "--budget", "3", "--no-progress", "--image-root",
                     str(server.document_root), "--label-studio", server.url, "--project", str(project)]) == 0
    assert "pushed 3 task(s)" in capsys.readouterr().out

    wd = Workdir(wd_path)
    state = wd.state()
    model = load_cycle_models(wd_path / state["cycles"][-1]["checkpoint"]).task.backbone.eval()
    mean, std = (torch.tensor(wd.meta[k], dtype=torch.float32).view(-1, 1, 1) for k in ("mean", "std"))
    tasks = {t["data"]["tavaal_id"]: t for t in ls.tasks(project)}
    assert sorted(tasks) == sorted(state["batches"][0]["ids"])
    for ident, task in tasks.items():
        image = torch.from_numpy(np.asarray(Image.open(scenes / "images" / ident).convert("RGB")).copy())
        with torch.no_grad():
            logits = model(((image.permute(2, 0, 1).float() / 255 - mean) / std)[None])[0]
        expected = logits[0].argmax(0).numpy().astype(np.uint8)
        (prediction,) = task["predictions"]
        decoded, problems = regions_to_mask(prediction["result"], classes, "tag", shape=expected.shape)
        assert problems == [] and np.array_equal(decoded, expected)


def test_an_image_config_for_an_array_pool_is_refused_naming_the_image_folder_pool(server, token, tmp_path,
                                                                                   monkeypatch, capsys):
    import numpy as np

    from tavaal.labelstudio import connect

    monkeypatch.setenv("LABEL_STUDIO_API_KEY", token)
    ls = connect(server.url)
    project = ls.call("creating the project", ls.sdk.projects.create, title="tavaal rows", label_config=CONFIG).id
    images, targets = digits_uint8(30)
    np.save(tmp_path / "pool.npy", images[:, None])
    seed = write_labels_csv(tmp_path / "seed.csv", [(str(r), str(targets[r])) for r in range(10)])
    wd = tmp_path / "wd"
    assert cli.main(["init", str(wd), "--pool", str(tmp_path / "pool.npy"), "--labels", str(seed), "--classes",
                     ",".join(str(k) for k in range(10)), "--holdout", "0", *TINY_FLAGS]) == 0
    capsys.readouterr()
    assert cli.main(["select", str(wd), "--budget", "4", "--label-studio", server.url, "--project", str(project)]) == 2
    err = capsys.readouterr().err
    assert "this pool is an array" in err and "needs an image-folder pool" in err
    assert Workdir(wd).state()["batches"] == []  # refused before anything was selected

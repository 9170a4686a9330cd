"""tavaal.data.sources.gpu_jpeg: JPEG decoding on the GPU where torchvision's nvJPEG decode is
importable; elsewhere it says why and the CPU decoder stays the only one. The GPU path itself
runs only where it imports (a GPU machine with torchvision) and is skipped cleanly otherwise."""
import numpy as np
import pytest
import torch
from PIL import Image

from tavaal.data.imagefiles import decode_image
from tavaal.data.sources.gpu_jpeg import decode_jpegs, gpu_jpeg_unavailable, is_jpeg

# nvJPEG's IDCT and torch's antialiased resize are not Pillow's: pixels agree to a few levels
MEAN_LEVELS = 3.0


def write_images(root):
    """Two JPEGs (one to resize), a PNG, a JPEG named .png, a corrupt JPEG; smooth content."""
    yy, xx = np.mgrid[0:48, 0:64]
    rgb = np.stack([xx * 4, yy * 5, (xx + yy) * 2], -1).clip(0, 255).astype(np.uint8)
    paths = [root / "a.jpg", root / "b.jpeg", root / "c.png", root / "d.png", root / "e.jpg"]
    Image.fromarray(rgb).save(paths[0], quality=95)
    Image.fromarray(rgb[:32, :32]).save(paths[1], quality=95)
    Image.fromarray(rgb).save(paths[2])
    Image.fromarray(rgb).save(paths[3], format="JPEG", quality=95)
    paths[4].write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)  # a JPEG's first bytes, then junk
    return paths


def test_jpegs_are_recognised_by_their_bytes_not_their_names(tmp_path):
    paths = write_images(tmp_path)
    assert [is_jpeg(p.read_bytes()) for p in paths] == [True, True, False, True, True]
    assert not is_jpeg(b"") and not is_jpeg(b"\xff\xd8")


def test_unavailability_is_explained_and_decoding_then_refuses(tmp_path):
    why = gpu_jpeg_unavailable()
    try:
        from torchvision.io import decode_jpeg  # noqa: F401

        importable = True
    except Exception:
        importable = False
    assert (why is None) == (torch.cuda.is_available() and importable)
    assert "not a CUDA device" in gpu_jpeg_unavailable("cpu")
    if why is not None:
        with pytest.raises(RuntimeError, match="GPU JPEG decoding is unavailable"):
            decode_jpegs(write_images(tmp_path), (32, 32))
    with pytest.raises(ValueError, match="channels"):
        decode_jpegs([], (32, 32), channels=2)


@pytest.mark.gpu
@pytest.mark.parametrize("channels", [3, 1])
def test_gpu_decode_matches_the_cpu_decoder_and_reports_unreadable_files(tmp_path, channels):
    if gpu_jpeg_unavailable() is not None:
        pytest.skip(gpu_jpeg_unavailable())
    paths = write_images(tmp_path)
    good, x, skipped = decode_jpegs(paths, (40, 56), channels)
    assert good == [0, 1, 2, 3]
    assert x.device.type == "cuda" and x.dtype == torch.uint8 and x.shape == (4, channels, 40, 56)
    assert [s["index"] for s in skipped] == [4] and skipped[0]["path"].endswith("e.jpg")
    for row, k in enumerate(good):
        want = decode_image(paths[k], (40, 56), channels)
        diff = (x[row].cpu().float() - want.float()).abs()
        if k == 2:  # the PNG went through the CPU decoder: identical
            assert torch.equal(x[row].cpu(), want)
        else:
            assert diff.mean() <= MEAN_LEVELS, (k, float(diff.mean()))

"""The segmentation presets: the paper's Table 1 Cityscapes row, and the CPU demo preset."""
from tavaal.config import resolve_config


def test_cityscapes_preset_is_the_papers_table_1_row():
    c = resolve_config("cityscapes")
    assert (c.dataset, c.arch, c.width) == ("cityscapes", "drn-d-22", 64)
    assert c.latent_dim == 128
    assert (c.optimizer, c.lr) == ("sgd", 1e-3)
    assert (c.wae_lr, c.disc_lr) == (1e-4, 1e-4)
    assert (c.eta, c.adversary_weight, c.beta) == (0.1, 25.0, 1.0)
    assert (c.batch_size, c.epochs, c.initial, c.budget) == (4, 100, 200, 200)
    assert c.dataset_options["crop_size"] == 412 and c.wae_input_size == 412


def test_segmentation_dataset_names_pick_their_presets():
    assert resolve_config(None, {"dataset": "segshapes"}).arch == "drn-d-small"
    assert resolve_config(None, {"dataset": "segfolder"}).arch == "drn-d-22"
    assert resolve_config(None, {"dataset": "cityscapes", "epochs": 3}).epochs == 3

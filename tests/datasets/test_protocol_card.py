"""Per-dataset meta-tailoring settings live in the dataset's card (``[protocol]``), never in code keyed on a
name: a user's card sets them the same way, and a copy of a built-in card under another name gets the same."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from formula_search.data import load_dataset
from formula_search.errors import InputError
from meta_tailor.advanced import paper_configs


def _recording(tmp_path, protocol: str):
    t = np.linspace(0, 10, 200)
    rows = "\n".join(f"{ti},{np.cos(ti)},{-np.sin(ti)}" for ti in t)
    (tmp_path / "spring.csv").write_text("t,q,p\n" + rows + "\n")
    (tmp_path / "spring.toml").write_text(
        'name = "bench"\nkind = "recorded"\n'
        '[[variables]]\nname = "q"\nunit = "m"\n[[variables]]\nname = "p"\nunit = "m/s"\n'
        '[file]\npath = "spring.csv"\ntime = "t"\n' + protocol
    )
    return tmp_path / "spring.toml"


def test_a_users_card_sets_the_protocol(tmp_path):
    card = _recording(tmp_path, "[protocol]\ninner_steps = [1, 2]\nmlp_weight_decay = 0.0\n")
    ds = load_dataset(str(card))
    assert ds.protocol == {"inner_steps": [1, 2], "mlp_weight_decay": 0.0}
    mlp, rank = paper_configs(ds.protocol)
    assert rank.inner_steps == (1, 2) and mlp.weight_decay == 0.0
    # what the card leaves out keeps the defaults
    default_mlp, default_rank = paper_configs()
    assert rank.tailor == default_rank.tailor and rank.inner_lrs == default_rank.inner_lrs
    assert default_mlp.weight_decay == 1e-4


def test_the_real_pendulums_settings_come_from_its_card_not_its_name(tmp_path):
    """Appendix C's settings (weight decay 1e-5, 1-3 inner steps, four inner rates) follow the card: under
    another name they are the same, and a card without [protocol] named real_pendulum gets none of them."""
    source = load_dataset("real_pendulum").extra["path"]
    folder = tmp_path / "copy"
    shutil.copytree(__import__("pathlib").Path(source).parent, folder)
    card = folder / "card.toml"
    card.write_text(card.read_text().replace('name = "real_pendulum"', 'name = "my_pendulum"'))
    mine = load_dataset(str(card))
    assert mine.name == "my_pendulum"
    mlp, rank = paper_configs(mine.protocol)
    assert mlp.weight_decay == 1e-5 and rank.tailor.weight_decay == 1e-5
    assert rank.inner_steps == (1, 2, 3) and rank.inner_lrs == (1e-3, 1e-2, 1e-1, 1.0)
    text = card.read_text()
    card.write_text(text[: text.index("[protocol]")].replace('"my_pendulum"', '"real_pendulum"'))
    plain = load_dataset(str(card))
    assert plain.name == "real_pendulum" and plain.protocol == {}
    assert paper_configs(plain.protocol)[1].inner_steps == (1,)


@pytest.mark.parametrize(
    ("protocol", "message"),
    [
        ("inner_steps = [0]", "inner_steps"),
        ("inner_steps = 2", "inner_steps"),
        ("sgd_inner_lrs = [-1.0]", "positive"),
        ("weight_decay = -1e-5", "non-negative"),
        ("inner_step = [1]", "inner_steps"),  # did-you-mean
    ],
)
def test_bad_protocol_tables_are_refused(tmp_path, protocol, message):
    card = _recording(tmp_path, f"[protocol]\n{protocol}\n")
    with pytest.raises(InputError, match=message):
        load_dataset(str(card))


def test_paper_configs_refuses_a_name():
    with pytest.raises(TypeError, match="protocol"):
        paper_configs("real_pendulum")


def test_the_config_defaults_are_what_the_command_line_runs():
    """One source for the defaults: with no [protocol], the configurations the run builds are the config
    dataclasses' own defaults (per-trajectory tailoring, outer rates warmed up over 10 steps)."""
    from meta_tailor import MLPConfig, RankConfig

    mlp, rank = paper_configs({})
    assert mlp == MLPConfig() and rank == RankConfig()
    assert rank.tailor.mode == "trajectory" and rank.tailor.outer_warmup == 10

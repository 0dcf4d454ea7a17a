"""Configuration schema: every unknown key, wrong type, out-of-range value and key that does not apply to
the task or family is an error naming the key, raised before any network exists; --set goes through the
same validation; the extension hook of the CLI."""
import math
import sys
import types

import pytest

from eprop_dist import cli
from eprop_dist import config as C
from eprop_dist.errors import EpropError


def test_defaults_are_nest_examples():
    s = C.resolve("sine_waves")
    assert (s.n_iter, s.seq, s.n_in, s.n_rec, s.family, s.neuron_model) == (200, 1000, 100, 100, "eprop_plus",
                                                                          "eprop_iaf")
    e = C.resolve("evidence_accumulation")
    assert (e.family, e.batch_size, e.n_iter_train, e.n_iter_test, e.n_iter_validate_every, e.n_iter_early_stop,
            e.stop_crit) == ("bsshslm_2020", 32, 50, 4, 10, 8, 0.07)
    n = C.resolve("nmnist")
    assert (n.batch_size, n.n_iter_train, n.n_iter_test, n.seq, n.learning_window, n.n_rec, n.p_in, n.p_rec,
            n.do_early_stopping) == (100, 10, 2, 300, 10, 150, 0.25, 0.01, False)
    assert C.resolve("sine_waves", "bsshslm_2020").neuron_model == "eprop_iaf_bsshslm_2020"


@pytest.mark.parametrize("data, key, words", [
    ({"n_iter": True}, "n_iter", "integer"),
    ({"optimize_each_step": "no"}, "optimize_each_step", "boolean"),
    ({"input_spike_prob": 7.5}, "input_spike_prob", "less than or equal to 1"),
    ({"eta": math.inf}, "eta", "finite"),
    ({"eta": math.nan}, "eta", "finite"),
    ({"eta": -1.0}, "eta", "greater than or equal to 0"),
    ({"n_rec": 0}, "n_rec", "greater than or equal to 2"),
    ({"seq": 2.5}, "seq", "integer"),
    ({"neuron_model": "lif"}, "neuron_model", "not a recurrent model"),
    ({"weights": "dense"}, "weights", "'rules' or 'nest_example'"),
    ({"p_rec": 0.0}, "p_rec", "greater than 0"),
])
def test_bad_values_name_the_key(data, key, words):
    with pytest.raises(C.ConfigError) as e:
        C.resolve("sine_waves", None, data)
    msg = str(e.value)
    assert f"'{key}'" in msg and words in msg, msg


def test_unknown_and_inapplicable_keys():
    with pytest.raises(C.ConfigError, match="unknown config key 'learning_rate'"):
        C.resolve("sine_waves", None, {"learning_rate": 3})
    with pytest.raises(C.ConfigError, match="key 'batch_size' does not apply to task sine_waves"):
        C.resolve("sine_waves", None, {"batch_size": 3})
    with pytest.raises(C.ConfigError, match="key 'data_dir' does not apply to task digits"):
        C.resolve("digits", None, {"data_dir": "x"})
    with pytest.raises(C.ConfigError, match="'optimize_each_step' does not apply to family bsshslm_2020"):
        C.resolve("sine_waves", "bsshslm_2020", {"optimize_each_step": True})
    with pytest.raises(C.ConfigError, match="task nmnist is available for eprop_plus"):
        C.resolve("nmnist", "bsshslm_2020")
    with pytest.raises(C.ConfigError, match="disagrees"):
        C.resolve("digits", None, {"task": "nmnist"})
    with pytest.raises(C.ConfigError, match="'learning_window' = 400: must be <= seq"):
        C.resolve("nmnist", None, {"learning_window": 400})
    with pytest.raises(C.ConfigError, match="unknown task"):
        C.resolve("mnist")


def test_set_parses_toml_literals_and_validates():
    s = C.parse_set(["n_iter=3", "eta=1e-3", "optimize_each_step=true", "neuron_model=eprop_iaf_adapt",
                     'weights="nest_example"'])
    assert s == {"n_iter": 3, "eta": 1e-3, "optimize_each_step": True, "neuron_model": "eprop_iaf_adapt",
                 "weights": "nest_example"}
    cfg = C.resolve("sine_waves", None, {"n_iter": 9}, s)        # --set wins over the file
    assert cfg.n_iter == 3 and cfg.neuron_model == "eprop_iaf_adapt"
    with pytest.raises(C.ConfigError, match="'n_iter' = 'lots'"):
        C.resolve("sine_waves", None, {}, C.parse_set(["n_iter=lots"]))
    with pytest.raises(C.ConfigError, match="expected key=value"):
        C.parse_set(["n_iter"])


def test_toml_file_errors(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("n_iter = [1\n")
    with pytest.raises(C.ConfigError, match="not valid TOML"):
        C.load_toml(p)
    p.write_text("[net]\nn_rec = 3\n")
    with pytest.raises(C.ConfigError, match=r"table \[net\] is not supported"):
        C.load_toml(p)
    with pytest.raises(C.ConfigError, match="not found"):
        C.load_toml(tmp_path / "missing.toml")
    p.write_text('n_iter = 2\nfamily = "bsshslm_2020"\n')
    assert C.resolve("sine_waves", None, C.load_toml(p)).family == "bsshslm_2020"


def test_cli_config_errors_leave_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    bad = tmp_path / "bad.toml"
    bad.write_text("n_iter = true\n")
    assert cli.main(["train", "sine_waves", "--config", str(bad), "--out", str(out)]) == 2
    assert "config key 'n_iter' = True" in capsys.readouterr().err
    assert cli.main(["train", "sine_waves", "--set", "input_spike_prob=7.5", "--out", str(out)]) == 2
    assert "'input_spike_prob' = 7.5" in capsys.readouterr().err
    assert not out.exists()


def test_extension_hook(monkeypatch):
    mod = types.ModuleType("eprop_dist_test_ext")
    seen = []

    def add_subcommands(sub):
        p = sub.add_parser("hello")
        p.set_defaults(func=lambda args: seen.append("hello") or 0)
    mod.add_subcommands = add_subcommands
    monkeypatch.setitem(sys.modules, "eprop_dist_test_ext", mod)
    monkeypatch.setattr(cli, "EXTENSIONS", ["eprop_dist_test_ext", "eprop_dist.no_such_extension_module"])
    assert cli.main(["hello"]) == 0 and seen == ["hello"]
    # a missing extension module adds nothing and breaks nothing
    with pytest.raises(SystemExit):
        cli.main(["no_such_subcommand"])


def test_missing_nmnist_data_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["train", "nmnist", "--set", f'data_dir="{tmp_path / "nope"}"', "--out",
                     str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "tonic.datasets.NMNIST" in err and "never downloads" in err
    (tmp_path / "d" / "Train" / "0").mkdir(parents=True)
    with pytest.raises(EpropError, match=r"incomplete: no .bin files for label\(s\) 0, 1, 2"):
        from eprop_dist.tasks import nmnist
        nmnist.datasets(C.resolve("nmnist", None, {"data_dir": str(tmp_path / "d")}))
    assert not (tmp_path / "o").exists()

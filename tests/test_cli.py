from __future__ import annotations

from genar._cli import main


def test_demo_without_data_says_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GENAR_CACHE_DIR", str(tmp_path / "cache"))
    code = main(["demo", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")])
    assert code == 2
    out = capsys.readouterr().out
    assert "could not be found or downloaded" in out and "--data DIR" in out and "GENAR_DATA_DIR" in out


def test_demo_does_not_overwrite_output(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    assert main(["demo", "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().out
    assert (out / "mine.txt").read_text() == "keep me"

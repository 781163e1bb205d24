import subprocess
import sys

from realtime_sr.cli import build_parser

HEAVY = ("torch", "av", "onnx", "onnxruntime", "numpy", "PIL", "safetensors")


def test_help_imports_nothing_heavy():
    code = ("import sys, realtime_sr.cli as c; c.build_parser().format_help(); "
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "", f"--help imports {r.stdout.strip()}"


def test_every_listed_command_has_working_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    names = list(sub.choices)
    assert {"image", "video", "eval", "train", "export", "bench", "models", "demo"} <= set(names)
    for name in names:
        r = subprocess.run([sys.executable, "-m", "realtime_sr", name, "--help"], capture_output=True, text=True)
        assert r.returncode == 0 and "usage:" in r.stdout, name


def test_console_entry_point_and_module_agree():
    r = subprocess.run([sys.executable, "-m", "realtime_sr", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("realtime-sr ")


def test_no_command_prints_help_and_fails():
    r = subprocess.run([sys.executable, "-m", "realtime_sr"], capture_output=True, text=True)
    assert r.returncode == 2 and "usage:" in r.stdout


def test_an_output_folder_under_a_file_is_one_line_not_a_traceback(tmp_path):
    """File-system refusals that no command words itself (demo's and train's output folders) still
    end as one line and a non-zero exit."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for args in (["demo", blocker / "out"],
                 ["train", "--recipe", "coarse_x2", "--out", blocker / "run", "--steps", "1"]):
        r = subprocess.run([sys.executable, "-m", "realtime_sr", *map(str, args)], capture_output=True, text=True)
        assert r.returncode == 1, r.stderr
        assert "Traceback" not in r.stderr
        assert r.stderr.strip().splitlines()[-1].startswith("realtime-sr: error: "), r.stderr
        assert "Not a directory" in r.stderr

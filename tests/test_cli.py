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

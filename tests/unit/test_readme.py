"""The README's Python example runs as written and its loss falls; the quick start has two commands."""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_readme_example_runs(tmp_path):
    text = open(os.path.join(ROOT, "README.md")).read()
    code = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    script = tmp_path / "example.py"
    script.write_text(code)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env,
                       cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    assert "loss per 1000 steps" in p.stdout and "spikes:" in p.stdout
    line = next(ln for ln in p.stdout.splitlines() if ln.startswith("loss per 1000 steps"))
    losses = [float(x) for x in line.split("[", 1)[1].rstrip("]").split(",")]
    assert len(losses) == 5 and losses[-1] < 0.8 * losses[0]     # it learns


def test_quick_start_commands_are_two():
    text = open(os.path.join(ROOT, "README.md")).read()
    block = text.split("## Quick start", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    lines = [ln for ln in block.splitlines() if ln.strip()]
    assert len(lines) == 2
    ci = open(os.path.join(ROOT, ".ci", "run")).read()
    assert lines[1] in ci

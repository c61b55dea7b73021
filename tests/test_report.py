"""docs/benchmarks.md and README.md agree with benchmarks/results: their generated parts are what
benchmarks/report.py writes from the JSON, and a number typed over one is caught."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_report():
    spec = importlib.util.spec_from_file_location("report", ROOT / "benchmarks" / "report.py")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    return report


def test_the_pages_are_what_the_results_give():
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "report.py"), "--check"], capture_output=True,
                            text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_a_number_typed_by_hand_is_caught_and_rewritten():
    report = load_report()
    page = (ROOT / "docs" / "benchmarks.md").read_text()
    assert "<!-- report:goals -->" in page
    tampered = page.replace("| system | goal | measured", "| system | goal | measured, typed by hand", 1)
    assert tampered != page
    assert report.render(tampered) == report.render(page) == page
    with pytest.raises(ValueError, match="no section 'nonsense'"):
        report.render("<!-- report:nonsense -->\n<!-- /report:nonsense -->")

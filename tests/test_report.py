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


def test_seeds_recorded_earlier_outlive_their_run_folders():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from common import _with_recorded_seeds

    recorded = {"protocol": "10 episodes", "seeds": [0, 1, 2], "per_seed": [10, 11, 12], "hours_per_seed": [1, 2, 3]}
    new = {"protocol": "10 episodes", "seeds": [3, 1], "per_seed": [33, 111], "hours_per_seed": [4, 5], "command": "c"}
    merged = _with_recorded_seeds(recorded, new)
    assert merged["seeds"] == [0, 1, 2, 3] and merged["per_seed"] == [10, 111, 12, 33]  # a re-run seed wins
    assert merged["hours_per_seed"] == [1, 5, 3, 4] and merged["command"] == "c"
    assert merged["earlier_runs"] == [{"command": None, "commit": None, "seeds": [0, 2]}]
    assert _with_recorded_seeds(recorded, {**new, "protocol": "100 episodes"})["seeds"] == [3, 1]
    again = _with_recorded_seeds(merged, {**new, "seeds": [4], "per_seed": [44], "hours_per_seed": [6], "command": "d"})
    assert again["seeds"] == [0, 1, 2, 3, 4]  # seeds 0 and 2 still credited to the run that measured them
    assert again["earlier_runs"] == [{"command": None, "commit": None, "seeds": [0, 2]},
                                     {"command": "c", "commit": None, "seeds": [1, 3]}]


def test_ablation_seeds_recorded_earlier_are_kept_per_variant():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from wm_ppo_ablations import with_recorded_seeds

    run = lambda seeds, values: {"seeds": seeds, "final_train": values, "final_eval": [v + 1 for v in values],
                                 "curves": [[[1], [v]] for v in values]}
    recorded = {"command": "a", "commit": "x", "WM-PPO z=16": run([1], [10]), "WM-PPO z=32 (default)": run([1, 2], [20, 21]),
                "WM-PPO alpha=0.01 (default)": run([1, 2], [20, 21])}
    new = {"command": "b", "WM-PPO z=16": run([3, 2], [13, 12]), "WM-PPO z=32, alpha=0.01 (the draft's)": run([2], [22])}
    merged = with_recorded_seeds(recorded, new)
    assert merged["WM-PPO z=16"]["seeds"] == [1, 2, 3] and merged["WM-PPO z=16"]["final_train"] == [10, 12, 13]
    assert merged["WM-PPO z=16"]["final_eval"] == [11, 13, 14]
    draft = merged["WM-PPO z=32, alpha=0.01 (the draft's)"]  # an older file's label for the same settings
    assert draft["seeds"] == [1, 2] and draft["final_train"] == [20, 22]  # a re-run seed wins
    assert merged["earlier_runs"] == [{"command": "a", "commit": "x", "seeds": {
        "WM-PPO z=16": [1], "WM-PPO z=32, alpha=0.01 (the draft's)": [1]}}]
    again = with_recorded_seeds(merged, {"command": "c", "WM-PPO z=16": run([4], [14]),
                                         "WM-PPO z=32, alpha=0.01 (the draft's)": run([], [])})
    assert again["WM-PPO z=16"]["seeds"] == [1, 2, 3, 4]
    assert again["earlier_runs"] == [merged["earlier_runs"][0],  # seed 1 stays with the run that measured it
                                     {"command": "b", "commit": None, "seeds": {
                                         "WM-PPO z=16": [2, 3], "WM-PPO z=32, alpha=0.01 (the draft's)": [2]}}]
    rerun = with_recorded_seeds(again, {"command": "d", "WM-PPO z=16": run([1], [15]),
                                        "WM-PPO z=32, alpha=0.01 (the draft's)": run([1], [25])})
    assert rerun["WM-PPO z=16"]["final_train"] == [15, 12, 13, 14]
    assert rerun["earlier_runs"] == [again["earlier_runs"][1], {"command": "c", "commit": None,  # seed 1 re-run: d's
                                                                "seeds": {"WM-PPO z=16": [4]}}]


def test_a_table_leaves_a_repeated_first_cell_empty_and_nothing_else():
    report = load_report()
    table = "\n".join(["text | with a bar", "", "| env | method |", "| --- | --- |", "| Hopper | ppo |",
                       "| Hopper | wm_ppo |", "| Walker | ppo |", "| Walker | wm_ppo |", "", "| env | x |", "| --- | --- |",
                       "| Walker | 1 |"])
    assert report._blank_repeats(table).split("\n") == [
        "text | with a bar", "", "| env | method |", "| --- | --- |", "| Hopper | ppo |", "|  | wm_ppo |",
        "| Walker | ppo |", "|  | wm_ppo |", "", "| env | x |", "| --- | --- |", "| Walker | 1 |"]

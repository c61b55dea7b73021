"""Runs inside the engine's virtualenv, never in worldkit's: one JSON request on stdin, one reply
on stdout. Only the standard library and ``sweeps`` are used here (numpy<2 lives in this venv)."""

import json
import sys

import sweeps


def validate(config: dict) -> list[str]:
    try:
        errors = sweeps.schema_violations_from_proposed_config(config)
    except Exception as error:  # shapes the schema walk itself trips over (parameters not a mapping)
        return [f"{type(error).__name__}: {error}"]
    if errors:
        return list(dict.fromkeys(errors))  # the engine reports some problems twice
    try:  # what the schema cannot say, e.g. a grid over a continuous range or bayes without a metric
        sweeps.next_run(config, [], validate=True)
    except Exception as error:  # the engine's own message is the answer
        return [str(error)]
    return []


def next_params(config: dict, runs: list[dict]) -> dict | None:
    suggestion = sweeps.next_run(config, [sweeps.SweepRun(**run) for run in runs], validate=True)
    return None if suggestion is None else {name: entry["value"] for name, entry in suggestion.config.items()}


def main() -> None:
    request = json.load(sys.stdin)
    if request["op"] == "validate":
        reply = {"errors": validate(request["config"])}
    else:
        reply = {"params": next_params(request["config"], request["runs"])}
    json.dump(reply, sys.stdout, default=lambda value: value.item())  # numpy scalars from the searches


if __name__ == "__main__":
    main()

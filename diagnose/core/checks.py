"""The result every health check returns (`diagnose sanity`, `diagnose data`), and the `--fail-on` gate.

A check is pass, warn or fail; `skip` means it could not run here (a format that cannot train, a
regression model for a classification check) and never trips the gate.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["pass", "warn", "fail", "skip"]
STATUSES: tuple[str, ...] = ("pass", "warn", "fail", "skip")
# How serious each status is, for the gate and for the overall result; skip counts as nothing.
SEVERITY: dict[str, int] = {"skip": 0, "pass": 0, "warn": 1, "fail": 2}
FAIL_ON: tuple[str, ...] = ("warn", "fail")


@dataclass(frozen=True)
class Check:
    """One check's outcome.

    id: the check's name (`init_loss`, `leakage`, ...); status: pass | warn | fail | skip;
    evidence: the numbers behind the status, one or two sentences; advice: what usually causes a
    warn / fail and what to do (empty on pass); details: the full numbers, JSON-ready.
    """

    id: str
    status: Status
    evidence: str
    advice: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"expected a status in {STATUSES}, got {self.status!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "evidence": self.evidence,
            "advice": self.advice,
            "details": self.details,
        }


def most_severe(statuses: Iterable[Status]) -> Status:
    """The most serious of some statuses by SEVERITY (fail > warn > pass); pass when there are none."""
    return max(statuses, key=SEVERITY.__getitem__, default="pass")


def worst_status(checks: Iterable[Check]) -> Status:
    """The most serious status among checks: fail > warn > pass; skip only when nothing ran."""
    statuses = [c.status for c in checks]
    for s in ("fail", "warn", "pass"):
        if s in statuses:
            return s
    return "skip"


def gate(checks: Sequence[Check], fail_on: str | None) -> list[Check]:
    """The checks that reach the `--fail-on` level (warn: warn or fail; fail: fail only); [] when None."""
    if fail_on is None:
        return []
    if fail_on not in FAIL_ON:
        raise ValueError(f"expected fail_on in {FAIL_ON}, got {fail_on!r}")
    level = SEVERITY[fail_on]
    return [c for c in checks if SEVERITY[c.status] >= level and c.status != "skip"]


def checks_document(checks: Sequence[Check], **extra: Any) -> dict[str, Any]:
    """The JSON document: {"checks": [{"id", "status", "evidence", "advice", "details"}], ...extra}."""
    return {"checks": [c.to_dict() for c in checks], **extra}


class SanityChecks(list[Check]):
    """The checks of `diagnose.sanity`: a list, plus the loaded model's format and the split used."""

    def __init__(self, checks: Sequence[Check] = (), *, model_format: str = "", split: str = "train") -> None:
        super().__init__(checks)
        self.model_format = model_format
        self.split = split


def gate_checks(checks: Sequence[Check], fail_on: str | None, what: str) -> None:
    """Raise GateFailed (exit code 3) when a check reaches `fail_on`; `what` names the model or data."""
    from diagnose.exceptions import GateFailed

    reached = gate(checks, fail_on)
    if reached:
        listed = ", ".join(f"{c.id} ({c.status})" for c in reached)
        raise GateFailed(
            f"{what}: expected no check at {fail_on} or worse (--fail-on {fail_on}), got {len(reached)}: {listed}; "
            "fix them or relax --fail-on"
        )

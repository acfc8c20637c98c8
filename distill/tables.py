"""Tables every report shares: entity F1 per type, one row per type of the run."""

from __future__ import annotations


def pct(x: float) -> str:
    return f"{100 * x:.1f}"


def run_types(models: dict[str, dict], labels: list[str] | None = None) -> list[str]:
    """The run's entity types: metrics.json's `labels`, else those its models were scored on."""
    if labels:
        return list(labels)
    types: list[str] = []
    for m in models.values():
        types += [t for t in m.get("per_type", {}) if t not in types]
    return types


def per_type_table(models: dict[str, dict], labels: list[str] | None = None) -> list[str]:
    """Entity F1 per type, one row per type (a receipt has 30 of them: rows scale, columns do not)."""
    types = run_types(models, labels)
    names = [n for n, m in models.items() if "per_type" in m]
    lines = [
        f"Entity F1 per type ({len(types)} labels of the run; gold entities in brackets):",
        "",
        "| type | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for t in types:
        support = next(
            (m["per_type"][t]["support"] for m in models.values() if t in m.get("per_type", {})), 0
        )
        cells = [pct(models[n]["per_type"][t]["f1"]) if t in models[n]["per_type"] else "—" for n in names]
        lines.append(f"| {t} ({support}) | " + " | ".join(cells) + " |")
    return lines + [""]

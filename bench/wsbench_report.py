"""The table ws_bench.py prints: one row per figure, one column per target, then the ratios.

Ratios: chatd over ``chatd-base`` (the same chatd at an earlier commit: what the features since
cost), each scaled-out chatd (chatd-2nodes, chatd-workers2) over one process (``chatd``), and
chatd (one process, and --workers 2) over each Node peer. With several runs each cell is the
median and the last columns hold every run's own ratio (runs alternate between the targets).
"""

from __future__ import annotations

from wsbench_run import utilization

SCALED = ("chatd-2nodes", "chatd-workers2")
PEERS = ("node", "node-mongo")


def mib(kib: int | None) -> float | None:
    return None if kib is None else round(kib / 1024, 1)


def find_max_rows(out: dict, m: dict) -> list[tuple[str, object]]:
    passed = [s for s in out["steps"] if s.get("passed")]
    failed = [s for s in out["steps"] if not s.get("passed")]
    best_m = m["steps"][len(passed) - 1] if passed else {}
    rows = [
        ("max msgs/s (p99<=%gms, no loss)" % out["p99_target_ms"], out["max_rate"]),
        ("max deliveries/s", out["max_deliveries_per_s"]),
        ("  p99 ms at max", passed[-1]["latency_ms"]["p99"] if passed else None),
        ("  server CPU us/delivery at max", best_m.get("server_cpu_us_per_delivery")),
        ("  all CPU us/delivery at max", best_m.get("all_cpu_us_per_delivery")),
        ("  server CPU util at max", best_m.get("server_cpu_utilization")),
        ("  all CPU util at max", best_m.get("all_cpu_utilization")),
        ("  generator CPU util at max", passed[-1]["generator_cpu"]["utilization"] if passed else None),
    ]
    if failed:
        f, f_m = failed[0], m["steps"][len(passed)] if len(m["steps"]) > len(passed) else {}
        rows += [
            ("first failing msgs/s", f["rate"]),
            ("  its p99 ms / loss", f"{f['latency_ms']['p99']} / {f['loss']}"),
            ("  all CPU util there", f_m.get("all_cpu_utilization")),
            # Near 1.0 the generator, not the server, set the limit: the max is then a lower bound.
            ("  generator CPU util there", f["generator_cpu"]["utilization"]),
        ]
    return rows


def connection_rows(out: dict, m: dict) -> list[tuple[str, object]]:
    return [
        ("sockets opened / failed", f"{out['opened']} / {out['failures']}"),
        ("handshakes/s", out["handshakes_per_s"]),
        ("handshake p50 ms", out["handshake_ms"]["p50"]),
        ("handshake p99 ms", out["handshake_ms"]["p99"]),
        ("server RSS before MiB", mib(m["server_rss_before_kib"])),
        ("server RSS idle MiB", mib(m["server_rss_idle_kib"])),
        ("KiB per idle connection", m["kib_per_idle_connection"]),
        ("server CPU us/handshake", m["server_cpu_us_per_handshake"]),
        ("server+store CPU us/handshake", m.get("server_and_store_cpu_us_per_handshake")),
        ("all CPU us/handshake", m.get("all_cpu_us_per_handshake")),
        ("listen queue overflows", m.get("listen_overflows")),
        ("server CPU util (connecting)", utilization(m.get("server_cpu_s"), m.get("wall_s"))),
        ("all CPU util (connecting)", m.get("all_cpu_utilization")),
        ("generator CPU util (connecting)", utilization(m.get("generator_cpu_s"), m.get("wall_s"))),
    ]


def revoke_rows(out: dict, m: dict) -> list[tuple[str, object]]:
    lat = out["latency_ms"]
    return [
        ("logouts / closed 4001 / not closed", f"{out['revocations']} / {lat['count']} / {out['not_closed']}"),
        ("revocation p50 ms", lat["p50"]),
        ("revocation p99 ms", lat["p99"]),
        ("revocation max ms", lat["max"]),
        ("logout HTTP p99 ms", out["logout_http_ms"]["p99"]),
        ("closed before logout answered", out["closed_before_logout_answered"]),
        ("all CPU util", m.get("all_cpu_utilization")),
        ("generator CPU util", m.get("generator_cpu_utilization")),
    ]


def delivery_rows(out: dict, m: dict) -> list[tuple[str, object]]:
    lat, cross = out["latency_ms"], out.get("cross_node_latency_ms")
    rows = [
        ("msgs/s sent", out["rate"]),
        ("deliveries/s", out["deliveries_per_s"]),
        ("latency p50 ms", lat["p50"]),
        ("latency p99 ms", lat["p99"]),
        ("latency max ms", lat["max"]),
    ]
    if cross:
        rows += [
            ("cross-node deliveries", out["cross_node_deliveries"]),
            ("cross-node p50 ms", cross["p50"]),
            ("cross-node p99 ms", cross["p99"]),
        ]
    return rows + [
        ("loss", out["loss"]),
        ("acks / sent", f"{out['acks']} / {out['sent']}"),
        # Each socket checks its room's seqs: a skipped one, or one at or below one already seen.
        ("seq gaps / out of order", f"{out['gaps']} / {out['out_of_order']}"),
        ("server CPU s", m.get("server_cpu_s")),
        ("store CPU s", m.get("store_cpu_s")),
        ("bus CPU s", m.get("bus_cpu_s")),
        ("generator CPU s", m.get("generator_cpu_s")),
        ("server CPU us/delivery", m["server_cpu_us_per_delivery"]),
        ("server+store CPU us/delivery", m["server_and_store_cpu_us_per_delivery"]),
        ("all CPU us/delivery (+bus)", m.get("all_cpu_us_per_delivery")),
        ("server CPU util", m["server_cpu_utilization"]),
        ("all CPU util", m.get("all_cpu_utilization")),
        ("generator CPU util", m.get("generator_cpu_utilization")),
    ]


def rows(scenario: str, result: dict) -> list[tuple[str, object]]:
    """(label, value) rows for one scenario's result."""
    if "error" in result:
        return [("error", result["error"][:60])]
    if "skipped" in result:
        return [("skipped", result["skipped"][:60])]
    out, m = result["generator"], result["measured"]
    if scenario == "find-max":
        return find_max_rows(out, m)
    if scenario == "connections":
        return connection_rows(out, m)
    if scenario == "revoke":
        return revoke_rows(out, m)
    return delivery_rows(out, m)


def cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def ratio(a: object, b: object) -> str:
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and b:
        return f"{a / b:.2f}"
    return ""


def median(values: list) -> object:
    """The median of the numbers in ``values`` (anything else: the first value)."""
    numbers = sorted(v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool))
    if len(numbers) != len(values) or not numbers:
        return values[0] if values else None
    middle = len(numbers) // 2
    return numbers[middle] if len(numbers) % 2 else (numbers[middle - 1] + numbers[middle]) / 2


def ratio_pairs(targets: list[str]) -> list[tuple[str, str]]:
    """(numerator, denominator) of each ratio column, for the targets of this run."""
    bases = [t for t in targets if t == "chatd-base" or t.startswith("chatd@")]
    pairs = [("chatd", base) for base in bases] if "chatd" in targets else []
    pairs += [(t, "chatd") for t in targets if t in SCALED and "chatd" in targets]
    for peer in (t for t in targets if t in PEERS):
        pairs += [(c, peer) for c in ("chatd", "chatd-workers2") if c in targets]
    return pairs


def print_table(targets: list[str], results: dict) -> None:
    """One row per figure: the median of each target's runs, the ratios of the medians, each run's ratios."""
    pairs = ratio_pairs(targets)
    runs = max(len(r) for r in results[targets[0]].values())
    header = ["scenario / figure"] + targets + [f"{a}/{b}" for a, b in pairs]
    if runs > 1:
        header += [f"{a}/{b}, each run" for a, b in pairs]
    lines = [header]
    for scenario in results[targets[0]]:
        lines.append([f"[{scenario}]"] + [""] * (len(header) - 1))
        tables = {t: [dict(rows(scenario, run)) for run in results[t][scenario]] for t in targets}
        # In the order of the longest list (chatd-2nodes adds the cross-node rows in the middle).
        ordered = sorted((table for t in targets for table in tables[t]), key=len, reverse=True)
        labels = list(dict.fromkeys(label for table in ordered for label in table))
        for label in labels:
            per_run = {t: [table.get(label) for table in tables[t]] for t in targets}
            values = {t: median(per_run[t]) for t in targets}
            line = [label] + [cell(values[t]) for t in targets]
            line += [ratio(values[a], values[b]) for a, b in pairs]
            if runs > 1:
                line += [" ".join(filter(None, (ratio(x, y) for x, y in zip(per_run[a], per_run[b])))) for a, b in pairs]
            lines.append(line)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(text.ljust(w) if i == 0 else text.rjust(w) for i, (text, w) in enumerate(zip(line, widths))))

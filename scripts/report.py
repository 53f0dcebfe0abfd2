#!/usr/bin/python3
"""Writes experiments/REPORT.md from committed files only, so that a fresh clone writes the same one:
the sweep files (experiments/*.yaml: claims, variants, rules), their results (experiments/results/
SWEEP.csv a row per run, SWEEP_seeds.csv the aggregate over seeds, both from `sinklab sweep
--summary --into experiments/results` or experiments/device/import.sh), the paper's numbers
(experiments/paper_gu2025.csv) and the plots in experiments/plots/ (drawn from the committed
curves by --plots).

  /usr/bin/python3 scripts/report.py [--experiments experiments] [--out FILE] [--plots] [--check]

--plots redraws experiments/plots/SWEEP.png first; --check writes nothing and exits 1 if the report
would differ from the one there.

A calibrated sweep's `rule:` names its shared baseline (the runs of experiments/baseline.yaml) and
chains over its variants, e.g. "wd_0 < wd_0.1 < wd_0.5": each step of a chain is judged on the
variants' mean Sink_1^0.3 (or the measure before a colon: "slot_sink@0.3: 0 < kv"), and is an effect
only where the difference exceeds the seed spread (see SPREAD below). A number stands for itself.
"""
import argparse
import math
import os
import sys

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from sinklab_log import read_sweep  # noqa: E402

ANALYSIS = "analysis"  # experiments/analysis.yaml: issue 17's analysis (scripts/analysis.py), not a sweep
BASELINE = "baseline"  # experiments/baseline.yaml, variant "baseline": what every calibrated rule compares against
MEASURE = "sink@0.3"
TARGET = 20.0  # issue 16: the calibrated baseline's mean Sink_1^0.3 over at least three seeds
OPS = ("<=", ">=", "<", ">", "~")
# The calibrated sweeps in the order of issue 16 (headline contrasts first); others follow by name.
ORDER = ("weight_decay", "learning_rate", "data_amount", "first_token", "kernels", "kv_bias", "prefix_window",
         "batch", "pos_enc", "ffn", "norm_placement", "heads", "mitigations")
SPREAD = ("the larger standard deviation over seeds of the two sides; a side with fewer than two seeds "
          "takes the baseline's standard deviation of Sink_1^0.3 (for a chain on a column other than a sink rate, the "
          "largest standard deviation of that column over the sweep's variants with seeds), and a number has none")
RULES = ("`a < b`: b exceeds a by more than the spread (an effect); against it where a exceeds b by more; "
         "no effect in between. `a ~ b`: they differ by at most the spread. `a <= b`: a does not exceed b "
         "by more than the spread. A chain of one strict direction (`a < b < c`) is a monotone range: it "
         "agrees where its ends differ by an effect in that direction and no step goes against it.")
SCREENING_COLUMNS = ["run", "status", "steps", "val_loss", "sink@0.1", "sink@0.3", "sink@0.3_max", "alpha1",
                     "massive_ratio", "v0_ratio", "slot_alpha", "bos_dormant", "bos_active", "wall_s"]


def rows_of(path):
    """The rows of a committed CSV (numeric columns as floats, nan where empty); none if it is absent."""
    return read_sweep(path) if os.path.exists(path) else []


def num(row, col):
    v = row.get(col, "") if row else ""
    if isinstance(v, float):
        return v
    try:
        return float(v)
    except ValueError:
        return math.nan


def count(row, col):
    v = num(row, col)
    return 0 if math.isnan(v) else int(v)


def text(v):
    """A cell as committed: whole numbers without a fraction."""
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.0f}" if v == int(v) and abs(v) < 1e15 else f"{v:.4g}"
    return str(v)


def read_spec(path):
    """A sweep file with every scalar as written (overrides are shown as they are in the file), and
    `extends: PARENT` resolved as sinklab's loader resolves it (train/sweep.cpp, read_sweep_doc):
    the parent's keys, each replaced by this file's, except variants, which this file's add to or
    replace by name, less those named in `exclude:`."""
    with open(path) as f:
        spec = yaml.load(f, Loader=yaml.BaseLoader) or {}
    if "extends" not in spec:
        return spec
    parent_path = os.path.join(os.path.dirname(path), spec["extends"])
    out = read_spec(parent_path)
    if "base" in out:
        out["base"] = os.path.normpath(os.path.relpath(os.path.join(os.path.dirname(parent_path), out["base"]),
                                                       os.path.dirname(path) or "."))
    for key, value in spec.items():
        if key in ("extends", "exclude"):
            continue
        if key == "variants" and "variants" in out:
            out["variants"] = {**out["variants"], **value}
        else:
            out[key] = value
    for name in spec.get("exclude", []):
        out["variants"].pop(name)
    return out


def read_paper(path):
    """experiments/paper_gu2025.csv without its leading # note: {sweep: [rows]}."""
    import csv
    with open(path, newline="") as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    out = {}
    for r in rows:
        out.setdefault(r["sweep"], []).append(r)
    return out


class Stat:
    """One column of one variant over its finished seeds."""

    def __init__(self, row, col):
        self.mean, self.std, self.n = num(row, col + "_mean"), num(row, col + "_std"), count(row, col + "_n")

    def show(self, digits=1, scale=1.0):
        if self.n == 0:
            return ""
        m = f"{self.mean * scale:.{digits}f}"
        return f"{m} ± {self.std * scale:.{digits}f} ({self.n})" if self.n > 1 else f"{m} (1)"


class Variant:
    """A row of a calibrated sweep: its aggregate, its runs and the paper's number beside it."""

    def __init__(self, name, overrides, agg, runs, paper):
        self.name, self.overrides, self.agg, self.runs, self.paper = name, overrides, agg, runs, paper
        self.finished, self.total = count(agg, "finished"), count(agg, "runs")
        self.proxy = any(r.get("sink_source") == "proxy" for r in runs if r.get("status") == "finished")

    def stat(self, col):
        return Stat(self.agg, col)


class Calibrated:
    """A calibrated sweep: experiments/SWEEP.yaml with its results and the paper's rows."""

    def __init__(self, name, spec, results, paper, baseline):
        self.name, self.spec = name, spec
        self.rule = spec.get("rule") or {}
        self.claim = spec.get("claim", "")
        self.base_name = self.rule.get("baseline", BASELINE if name == BASELINE else "")
        agg = {r["variant"]: r for r in rows_of(os.path.join(results, name + "_seeds.csv"))}
        runs = rows_of(os.path.join(results, name + ".csv"))
        paper_of = {r["variant"]: r for r in paper.get(name, []) if r["variant"]}
        self.paper_only = [r for r in paper.get(name, []) if not r["variant"]]
        self.variants = []
        if self.base_name and name != BASELINE:
            b_agg, b_runs = baseline
            self.variants.append(Variant(self.base_name, "the baseline (experiments/baseline.yaml)", b_agg, b_runs,
                                         paper_of.get(self.base_name)))
        for v, overrides in (spec.get("variants") or {}).items():
            shown = " ".join(f"{k}={x}" for k, x in (overrides or {}).items() if k != "seeds") or "(the base config)"
            self.variants.append(Variant(v, shown, agg.get(v), [r for r in runs if r.get("variant") == v],
                                         paper_of.get(v)))
        self.by_name = {v.name: v for v in self.variants}
        self.runs = runs
        self.columns = spec_columns(name, spec, runs)


def spec_columns(name, spec, runs):
    """A sweep file's `columns:` (one name or a list), each checked against its results' columns."""
    cols = spec.get("columns") or []
    cols = cols if isinstance(cols, list) else [cols]
    known = {k for r in runs for k in r}
    unknown = [c for c in cols if runs and c not in known]
    if unknown:
        raise SystemExit(f"experiments/{name}.yaml: columns names {', '.join(unknown)}, not a column of "
                         f"{name}.csv; its columns: {', '.join(sorted(known))}")
    return cols


def baseline_spread(baseline):
    return Stat(baseline[0], MEASURE).std if baseline[0] else math.nan


def term(sweep, word, measure, spread):
    """(mean, std used for the spread, label) of a chain's term; mean nan where it is pending."""
    try:
        x = float(word)
        return x, 0.0, word
    except ValueError:
        pass
    v = sweep.by_name.get(word)
    if v is None:
        raise SystemExit(f"experiments/{sweep.name}.yaml: rule names '{word}', which is neither a variant "
                         f"({', '.join(sweep.by_name)}) nor a number")
    s = v.stat(measure)
    return (s.mean if s.n else math.nan), (s.std if s.n > 1 else spread), word


def judge(a, op, b, spread):
    if op == "<":
        return "holds" if b - a > spread else "against" if a - b > spread else "no effect"
    if op == ">":
        return "holds" if a - b > spread else "against" if b - a > spread else "no effect"
    if op == "<=":
        return "against" if a - b > spread else "holds"
    if op == ">=":
        return "against" if b - a > spread else "holds"
    return "holds" if abs(a - b) <= spread else "against"


def parse_chain(chain):
    measure, _, body = chain.rpartition(":") if ":" in chain else ("", "", chain)
    words = body.split()
    terms, ops = words[0::2], words[1::2]
    if len(words) < 3 or len(words) % 2 == 0 or any(o not in OPS for o in ops):
        raise SystemExit(f"rule chain '{chain}': expected 'a OP b [OP c ...]' with OP one of {', '.join(OPS)}")
    return (measure.strip() or MEASURE), terms, ops


def judge_chain(sweep, chain, spread):
    """(verdict, detail) of one chain: agrees, disagrees, no effect or pending."""
    measure, terms, ops = parse_chain(chain)
    vals = [term(sweep, t, measure, spread) for t in terms]
    pairs = [(i, i + 1, ops[i]) for i in range(len(ops))]
    monotone = len(terms) > 2 and len(set(ops)) == 1 and ops[0] in "<>"
    if monotone:
        pairs.append((0, len(terms) - 1, ops[0]))
    results, parts = [], []
    for i, j, op in pairs:
        (a, sa, la), (b, sb, lb) = vals[i], vals[j]
        s = max(sa, sb)
        if math.isnan(a) or math.isnan(b) or math.isnan(s):
            results.append("pending")
            parts.append(f"{la} {op} {lb}: pending")
            continue
        r = judge(a, op, b, s)
        results.append(r)
        f = ".1f" if measure.startswith(("sink@", "slot_sink@")) else ".3g"
        parts.append(f"{la} {op} {lb}: {a:{f}} vs {b:{f}}, spread {s:{f}}: {r}")
    if "pending" in results:
        verdict = "pending"
    elif "against" in results:
        verdict = "disagrees"
    elif (results[-1] == "holds") if monotone else all(r == "holds" for r in results):
        verdict = "agrees"
    else:
        verdict = "no effect"
    what = "" if measure == MEASURE else f" ({measure})"
    return verdict, f"`{chain}`{what}: **{verdict}** ({'; '.join(parts)})"


def sweep_verdict(verdicts):
    n = len(verdicts)
    count = {k: verdicts.count(k) for k in ("agrees", "disagrees", "no effect", "pending")}
    if count["pending"] == n:
        return "pending"
    tally = ", ".join(f"{count[k]} {k}" for k in ("agrees", "disagrees", "no effect") if count[k])
    if count["pending"]:
        return f"pending ({count['pending']} of {n} chains; so far {tally})"
    for k in ("agrees", "disagrees", "no effect"):
        if count[k] == n:
            return k
    return f"partly ({tally} of {n} chains)"


def paper_cell(p):
    if not p:
        return "—"
    if p["sink1"] == "":
        return f"*{p['note']}*" if p["note"] else "—"
    cell = f"{p['setting']}: {p['sink1']}{'*' if p['proxy'] == 'yes' else ''}"
    if p["sink_slot"]:
        cell += f" (slot {p['sink_slot']})"
    return cell


def finished_cell(v):
    return f"{v.finished}/{v.total}" if v.total else "0 (not run)"


def stat_cell(v, col, digits):
    if v.finished == 0:
        return "pending"
    return v.stat(col).show(digits) or "—"


def onset_cell(v, col):
    s = v.stat(col + "_step")
    if v.finished == 0:
        return "pending"
    if s.n == 0:
        return f"not reached (0 of {v.finished})"
    tokens = v.stat(col + "_tokens")
    spread = f" ± {s.std:.0f}" if s.n > 1 else ""
    return f"{s.mean:.0f}{spread} ({tokens.mean / 1e6:.1f}M tokens; {s.n} of {v.finished})"


def sink_cell(v, col=MEASURE):
    if v.finished == 0:
        return "pending"
    s = v.stat(col)
    if not s.n:
        return "—"
    return s.show() + ("*" if v.proxy and col == MEASURE else "")


def extra_columns_table(sweep):
    """The sweep file's `columns:` (summary columns beyond the sinks) per variant, mean ± std (n)."""
    head = ["variant"] + sweep.columns
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for v in sweep.variants:
        lines.append("| " + " | ".join([v.name] + [stat_cell(v, c, 3) for c in sweep.columns]) + " |")
    return ("Summary columns of `experiments/" + sweep.name + ".yaml` (`columns:`; each is documented by "
            "`sinklab stats --list`):\n\n" + "\n".join(lines))


def measure_spread(sweep, measure, spread):
    """The spread a side of fewer than two seeds takes: the baseline's Sink_1^0.3 standard deviation for a
    sink rate (Sink_1 or a slot's Sink_*, in the same unit), else the largest standard deviation of the
    measure over the variants with seeds."""
    if measure.startswith(("sink@", "slot_sink@")):
        return spread
    stds = [v.stat(measure).std for v in sweep.variants if v.stat(measure).n > 1]
    return max(stds) if stds else math.nan


def calibrated_section(sweep, spread, plot, out_path, experiments):
    chains = sweep.rule.get("chains") or []
    judged = [judge_chain(sweep, c, measure_spread(sweep, parse_chain(c)[0], spread)) for c in chains]
    verdict = sweep_verdict([v for v, _ in judged]) if judged else "no rule"
    slot = any(v.stat("slot_sink@0.3").n for v in sweep.variants) or any(
        parse_chain(c)[0].startswith("slot_sink") for c in chains)
    head = ["variant", "overrides", "paper: Sink_1 %", "ours: Sink_1^0.3 %"] + (["slot Sink_*^0.3 %"] if slot else []) + [
        "alpha_1", "Sink_1^0.3 >= 10 % at step", "alpha_1 >= 2x uniform at step", "val loss", "finished"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for v in sweep.variants:
        cells = [v.name, v.overrides, paper_cell(v.paper), sink_cell(v)]
        if slot:
            cells.append(sink_cell(v, "slot_sink@0.3") if v.finished else "pending")
        cells += [stat_cell(v, "alpha1", 3), onset_cell(v, "onset_sink"), onset_cell(v, "onset_alpha"),
                  stat_cell(v, "val_loss", 3), finished_cell(v)]
        lines.append("| " + " | ".join(cells) + " |")
    out = [f"### {sweep.name}", "", f"Claim: {sweep.claim}", "", "\n".join(lines), ""]
    if sweep.columns:
        out += [extra_columns_table(sweep), ""]
    if sweep.spec.get("notes"):
        out += [f"Notes: {sweep.spec['notes']}", ""]
    if sweep.paper_only:
        out += ["The paper also reports: " + "; ".join(f"{r['setting']}: {r['sink1']}" for r in sweep.paper_only) + ".", ""]
    if judged:
        out += [f"Verdict: **{verdict}**. Rule, on each variant's mean over seeds:", ""]
        out += [f"- {d}" for _, d in judged] + [""]
    out += [f"Plot: ![{sweep.name}]({plot})" if plot else "Plot: none yet (no committed curves).", ""]
    for pic in sweep.spec.get("pictures") or []:
        missing = [k for k in ("png", "what", "command") if k not in pic]
        if missing:
            raise SystemExit(f"experiments/{sweep.name}.yaml: a pictures entry lacks {', '.join(missing)}; each has "
                             "png (relative to experiments/), what and command")
        path = os.path.join(experiments, pic["png"])
        out += [f"{pic['what']} (`{pic['command']}`):" if os.path.exists(path) else
                f"{pic['what']}: not drawn yet (`{pic['command']}`).", ""]
        if os.path.exists(path):
            link = os.path.relpath(path, os.path.dirname(os.path.abspath(out_path)))
            out += [f"![{os.path.basename(pic['png'])}]({link})", ""]
    return verdict, judged, "\n".join(out)


def baseline_section(base, spread, plot):
    v = base.variants[0]
    s = v.stat(MEASURE)
    if v.finished == 0:
        target = "pending (no finished run yet)"
    else:
        met = s.n >= 3 and s.mean >= TARGET
        target = (f"{'met' if met else 'not met'}: mean Sink_1^0.3 {s.mean:.1f} % over {s.n} seeds "
                  f"(target >= {TARGET:.0f} % over at least three)")
    per_seed = "; ".join(f"{r['run']} {text(r.get(MEASURE, ''))}" for r in v.runs if r.get("status") == "finished")
    out = [f"### {base.name}", "", f"Claim: {base.claim}", "",
           "| variant | paper: Sink_1 % | ours: Sink_1^0.3 % | alpha_1 | Sink_1^0.3 >= 10 % at step | "
           "alpha_1 >= 2x uniform at step | val loss | finished |", "|---|---|---|---|---|---|---|---|",
           f"| {v.name} | {paper_cell(v.paper)} | {sink_cell(v)} | {stat_cell(v, 'alpha1', 3)} | "
           f"{onset_cell(v, 'onset_sink')} | {onset_cell(v, 'onset_alpha')} | {stat_cell(v, 'val_loss', 3)} | "
           f"{finished_cell(v)} |", "",
           f"Calibration target: {target}. Per seed: {per_seed or 'pending'}.",
           f"Seed spread (standard deviation of Sink_1^0.3 over the baseline's seeds): "
           f"{'pending' if math.isnan(spread) else f'{spread:.1f} points'}.", "",
           f"Plot: ![{base.name}]({plot})" if plot else "Plot: none yet (no committed curves).", ""]
    return "\n".join(out)


def verbatim_section(name, claim, rows, results_file, extra=()):
    """A sweep without a rule: its runs as they are (interrupted ones too), with its `columns:`."""
    cols = [c for c in SCREENING_COLUMNS + [c for c in extra if c not in SCREENING_COLUMNS]
            if any(text(r.get(c, "")) for r in rows)]
    table = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    table += ["| " + " | ".join(text(r.get(c, "")) for c in cols) + " |" for r in rows]
    return f"### {name}\n\nClaim: {claim}\n\n" + "\n".join(table) + f"\n\nFull table: `{results_file}`.\n"


class AnalysisTable:
    """experiments/analysis.yaml's variants as judge_chain reads a sweep: by_name -> Variant."""

    def __init__(self, spec, results):
        self.name = ANALYSIS
        agg = {r["variant"]: r for r in rows_of(os.path.join(results, ANALYSIS + "_seeds.csv"))}
        self.variants = [Variant(v, " ".join(runs), agg.get(v), [], None) for v, runs in spec["variants"].items()]
        for v in self.variants:
            v.finished = v.total = count(v.agg, "runs")
        self.by_name = {v.name: v for v in self.variants}


def analysis_section(ex, results, plots, out_path, draw):
    spec_path = os.path.join(ex, ANALYSIS + ".yaml")
    if not os.path.exists(spec_path):
        return []
    with open(spec_path) as f:
        spec = yaml.safe_load(f)
    table = AnalysisTable(spec, results)
    import analysis as columns_of
    softmax = table.by_name.get("softmax")
    steps = sorted({int(num(r, "step")) for r in rows_of(os.path.join(results, ANALYSIS + ".csv"))})
    out = ["## Interventions, streaming and mechanisms (issue 17)", "",
           "`/usr/bin/python3 scripts/analysis.py` runs `sinklab analyze` with `" + " ".join(spec["analyze"]) +
           "` on the calibrated runs below and writes `experiments/results/analysis.csv` (every analysed checkpoint: "
           f"steps {', '.join(map(str, steps)) or 'none yet'}), `analysis_seeds.csv` (each run's last one) and "
           "`analysis_streaming.csv`, from which this section is drawn. Each cell: mean ± standard deviation over the "
           "variant's runs at their last analysed step (n).", "",
           "| variant | runs |", "|---|---|"]
    out += [f"| {v.name} | {v.overrides} |" for v in table.variants] + [""]
    for key, title in columns_of.TABLES.items():
        cols = [name for t, name, _, _ in columns_of.COLUMNS if t == key]
        lines = ["| variant | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 1)]
        for v in table.variants:
            lines.append(f"| {v.name} | " + " | ".join(v.stat(c).show(3) or "—" for c in cols) + " |")
        out += [f"{title}:", "", *lines, ""]
    out += ["Columns: " + "; ".join(f"`{name}` {doc}" for _, name, doc, _ in columns_of.COLUMNS) + ".", ""]
    out += ["Claims of the literature against these numbers (a chain is judged as in the sweeps; a side of one run "
            "takes softmax's standard deviation of that column over its seeds):", ""]
    verdicts = []
    for claim in spec.get("claims") or []:
        measure = parse_chain(claim["chain"])[0]
        spread = softmax.stat(measure).std if softmax and softmax.stat(measure).n > 1 else math.nan
        verdict, detail = judge_chain(table, claim["chain"], spread)
        verdicts.append(verdict)
        out.append(f"- {claim['paper']}. {detail}")
    out += ["", f"Verdict: **{sweep_verdict(verdicts) if verdicts else 'no claims'}**.", ""]
    for name in ("analysis_streaming", "analysis_training"):
        png = os.path.join(plots, name + ".png")
        if draw and os.path.exists(os.path.join(results, ANALYSIS + "_seeds.csv")):
            import plot_analysis_report
            os.makedirs(plots, exist_ok=True)
            getattr(plot_analysis_report, name.split("_")[1])(results, png)
        if os.path.exists(png):
            out += [f"![{name}]({os.path.relpath(png, os.path.dirname(os.path.abspath(out_path)))})", ""]
    return out


def curve_paths(results, sweep, variant_runs):
    d = os.path.join(results, "curves", sweep)
    return [os.path.join(d, r["run"] + ".csv") for r in variant_runs if os.path.exists(os.path.join(d, r["run"] + ".csv"))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--experiments", default="experiments")
    ap.add_argument("--out", default=None)
    ap.add_argument("--plots", action="store_true", help="redraw experiments/plots/SWEEP.png from the committed curves")
    ap.add_argument("--check", action="store_true", help="exit 1 if the report differs from --out; write nothing")
    args = ap.parse_args()
    ex = args.experiments
    results, plots = os.path.join(ex, "results"), os.path.join(ex, "plots")
    out_path = args.out or os.path.join(ex, "REPORT.md")
    paper = read_paper(os.path.join(ex, "paper_gu2025.csv"))

    specs = {}
    for path in sorted(os.listdir(ex)):
        if path.endswith(".yaml") and path[:-5] != ANALYSIS:
            specs[path[:-5]] = read_spec(os.path.join(ex, path))
    b_agg = {r["variant"]: r for r in rows_of(os.path.join(results, BASELINE + "_seeds.csv"))}.get(BASELINE)
    b_runs = [r for r in rows_of(os.path.join(results, BASELINE + ".csv")) if r.get("variant") == BASELINE]
    baseline = (b_agg, b_runs)
    spread = baseline_spread(baseline)
    names = sorted((n for n, s in specs.items() if n == BASELINE or "rule" in s),
                   key=lambda n: (n != BASELINE, ORDER.index(n) if n in ORDER else len(ORDER), n))
    calibrated = [Calibrated(n, specs[n], results, paper, baseline) for n in names]

    def plot_of(sweep):
        png = os.path.join(plots, sweep.name + ".png")
        if args.plots:
            variants = [(v.name, curve_paths(results, BASELINE if v.overrides.startswith("the baseline") else sweep.name,
                                             v.runs)) for v in sweep.variants]
            variants = [(label, paths) for label, paths in variants if paths]
            if variants:
                import plot_curves
                os.makedirs(plots, exist_ok=True)
                plot_curves.draw(sweep.name, variants, png)
        return os.path.relpath(png, os.path.dirname(os.path.abspath(out_path))) if os.path.exists(png) else ""

    sections, overview, closing = [], [], []
    for sweep in calibrated:
        if sweep.name == BASELINE:
            sections.append(baseline_section(sweep, spread, plot_of(sweep)))
            continue
        verdict, judged, text_ = calibrated_section(sweep, spread, plot_of(sweep), out_path, os.path.abspath(ex))
        sections.append(text_)
        rule = "; ".join(f"`{c}`" for c in sweep.rule.get("chains") or []) or "none"
        overview.append(f"| [{sweep.name}](#{sweep.name}) | {rule} | {verdict} |")
        closing.append((verdict, sweep.name, [d for _, d in judged]))

    screening = []
    for path in sorted(os.listdir(os.path.join(ex, "screening"))) if os.path.isdir(os.path.join(ex, "screening")) else []:
        name = path[:-5]
        spec = read_spec(os.path.join(ex, "screening", path))
        f = os.path.join(results, "screening", name + ".csv")
        if os.path.exists(f):
            screening.append(verbatim_section(name, spec.get("claim", ""), rows_of(f), f))
    others = []
    for name, spec in specs.items():
        f = os.path.join(results, name + ".csv")
        if name != BASELINE and "rule" not in spec and os.path.exists(f):
            rows = rows_of(f)
            others.append(verbatim_section(name, spec.get("claim", ""), rows, f, spec_columns(name, spec, rows)))

    groups = {}
    for verdict, name, _ in closing:
        groups.setdefault(verdict.split(" (")[0], []).append(name)
    closing_lines = [f"- {k}: {', '.join(groups[k])}" for k in ("agrees", "disagrees", "partly", "no effect", "pending")
                     if k in groups]
    text_out = "\n".join([
        "# Reproduction report", "",
        "Generated by `scripts/report.py` from committed files only: the sweep files (`experiments/*.yaml`), "
        "their results (`experiments/results/SWEEP.csv`, a row per run, and `SWEEP_seeds.csv`, the aggregate "
        "over seeds), the paper's numbers (`experiments/paper_gu2025.csv`) and the plots in `experiments/plots/`, "
        "drawn from the committed per-run curves (`experiments/results/curves/`). "
        "`scripts/report.py --check` fails when this file is not what they give.", "",
        "## How to read it", "",
        "- Sink_1^0.3: the share (%) of (layer, head, probe sequence) whose first token receives more than 0.3 of "
        "the attention on average (Gu et al.); alpha_1: that attention, averaged. Kernels that do not normalise "
        "their weights into a distribution are scored on proxy weights |w| / sum |w| (marked *, as in the paper). "
        "slot Sink_*: the same share for a K/V-bias slot or sink token.",
        "- ours: mean ± sample standard deviation (n finished seeds) at the last step; onsets: the first logged "
        "step with Sink_1^0.3 >= 10 % and with alpha_1 >= twice uniform causal attention's (2 H_64 / 64 = 0.148), "
        "over the seeds that reached it.",
        f"- Rules: {RULES} The spread: {SPREAD}.",
        "- pending: no finished run yet. Nothing here is filled in by hand.", "",
        "## Calibrated scale", "",
        "`experiments/configs/calibrated.yaml`: the paper's architecture (LLaMA preset: RoPE, RMSNorm, SwiGLU) at "
        "d_model 128, 4 layers, 4 heads, context 64, batch 32, constant LR 1e-3 after 100 warm-up steps, weight "
        "decay 0.1, 6000 steps (12.3M tokens), BOS first, BPE vocabulary 1024, a probe of 64 validation sequences. "
        "The paper trains a 60M model on 5B tokens at context 2048, so its numbers are for the shape of each "
        "effect, not its size.", "",
        "| sweep | rule | verdict |", "|---|---|---|", *overview, "",
        "Closing note, by verdict:", "", *(closing_lines or ["- nothing judged yet"]), "",
        *sections,
        *analysis_section(ex, results, plots, out_path, args.plots),
        "## Screening (smoke) scale", "",
        "`experiments/configs/cpu_scale.yaml` (d_model 64, batch 16, 1800 steps, vocabulary 4096, one seed): "
        "Sink_1^0.3 is about 0 for every softmax run there, so these tables are kept as smoke runs and read at "
        "most on Sink_1^0.1; the calibrated sweeps above supersede them.", "",
        *screening,
        "## Other studies", "",
        "Bigram-Backcopy, the calibration search and the former GPT-2 calibrated scale, as recorded "
        "(experiments/README.md discusses them).", "",
        *others,
    ]).rstrip() + "\n"

    if args.check:
        old = open(out_path).read() if os.path.exists(out_path) else ""
        if old != text_out:
            a, b = old.splitlines(), text_out.splitlines()
            i = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), min(len(a), len(b)))
            print(f"{out_path} is not what scripts/report.py writes from the committed files (first difference at "
                  f"line {i + 1}):\n  committed: {a[i] if i < len(a) else '<end>'}\n  generated: "
                  f"{b[i] if i < len(b) else '<end>'}\nrun /usr/bin/python3 scripts/report.py and commit it")
            sys.exit(1)
        print(f"{out_path} is up to date")
        return
    with open(out_path, "w") as f:
        f.write(text_out)
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()

"""New products placed from their catalog rows (issue 14), on the bundled Online Retail.

    python benchmarks/new_items.py                          # cut 2011-10-01, 4 weeks after it
    python benchmarks/new_items.py --cut 2011-09-01 --weeks 2 --out /tmp/new_items.json

Protocol:

1. The model knows only the past: interactions before ``--cut`` and the catalog rows of the
   products sold before it. The GAN (default settings, seed 0) is early-stopped on the last
   ``--valid-days`` before the cut and refitted on everything before the cut for that epoch
   count, as ``recogan train`` does (``--epochs N`` skips the validation fit).
2. "New products" are those known at the cut and not sold before it: every catalog product
   without a sale before the cut, whether or not it will sell in the window (which products
   will sell is not known at the cut, so it cannot choose what is added). Online Retail has
   no listing dates, so this is every product first sold at or after the cut; those first
   sold later than the window stay in as distractors, which makes the task harder, never
   easier. The purchases scored as "new products' purchases" are those in the ``--weeks``
   after the cut of products first sold inside that window. The products are added with
   ``recogan.catalog.add_items`` from their catalog rows only: title (the description) and
   price (Online Retail has no category column). Nothing about their sales is used.
3. Test customers: customers known before the cut who bought, in the window, something they
   had not bought before. Metrics @10 with ``recogan.evaluate.ranking_metrics`` (the same
   definitions as every report), seen items excluded.

Placements compared (every one gets the same prior per product, the one the GAN's default
rule gives, so only the vector differs):

- content: the vector of the fitted feature pipeline (``ItemFeatures.transform``);
- random: a random unit vector (mean of 3 seeds);
- category bestseller: the vector of the best-selling old product of the new product's
  category, where the category is derived, weakly, as the first word of the title (the global
  bestseller's vector when no old product shares that word).

Among the new products only (which new product will this customer buy?), the GAN's content
placement is also compared with a random order (mean of 20 permutations) and two category
popularity rankings: the customer's own purchases in the derived category, and the category's
sales overall. Reported: HR@10 and NDCG@10 on the new products' purchases, and the overall
NDCG@10 on every purchase of the window without and with the new products added.

The GAN's prior rules for new products (``VARIANTS``: ``NEW_ITEM_PRIOR`` with
``NEW_ITEM_LAUNCH_WEIGHTS``) are compared on the same fitted model, and a fixed prior for
every new product (``PRIOR_SWEEP``) shows what ``add_items(prior=...)`` does. The criterion
that chose the default (on the September window only): HR@10 on the new products' purchases
ranked among all products, ties by overall NDCG@10, among the rules whose overall NDCG@10
drops by at most ~2% (relative) against the model without the new products.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recogan.artifacts import save_model

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from recogan.evaluate import mean_metrics, ranking_metrics  # noqa: E402

DAY = 86400
K = 10
#: The GAN's placement rules compared: (NEW_ITEM_NEIGHBOURS, NEW_ITEM_PRIOR).
VARIANTS = (
    (20, "launch_neighbours", "buyers"),
    (20, "launch", "buyers"),
    (20, "launch_neighbours", "equal"),
    (20, "launch", "equal"),
    (20, "neighbours", None),
    (20, "median", None),
    (20, "slow", None),
    (0, "median", None),
    (0, "slow", None),
)
#: Fixed priors for the new products (``add_items(prior=...)``, a retailer's knob) compared.
PRIOR_SWEEP = (None, 1.0, 2.0, 3.0)
log = logging.getLogger("new_items")


# ---------------------------------------------------------------------- data
def frames():
    """Online Retail as external-id frames: events (user, item, time) and catalog rows."""
    from recogan.datasets import online_retail

    d = online_retail()
    ev = pd.DataFrame(
        {
            "user_id": d.users.to_ids(d.user_idx),
            "item_id": d.items.to_ids(d.item_idx),
            "timestamp": d.times,
        }
    )
    cat = d.catalog.assign(item_id=d.items.ids)[["item_id", "title", "price"]]
    return ev, cat


def first_word(title) -> str:
    words = str(title).upper().split() if isinstance(title, str) else []
    return words[0] if words else ""


# ---------------------------------------------------------------------- model
def fit_model(old, cut: int, valid_days: float, epochs: int | None):
    from recogan.fitting import DEFAULT_SCORER
    from recogan.gan.model import GANRecommender

    t0 = time.perf_counter()
    if epochs is None:
        t = old.times
        v0 = cut - int(valid_days * DAY)
        train = old.subset(t < v0, name="train")
        known = np.zeros(old.n_users, dtype=bool)
        known[train.user_idx] = True
        valid = old.subset((t >= v0) & known[old.user_idx], name="valid")
        probe = GANRecommender(seed=0).fit(train, valid, scorer=DEFAULT_SCORER)
        epochs = int(max(1, probe.best_epoch_))
        log.info("validation fit: best epoch %d (%.0f s)", epochs, time.perf_counter() - t0)
    t1 = time.perf_counter()
    model = GANRecommender(seed=0, epochs=epochs).fit(old)
    return model, epochs, time.perf_counter() - t1, time.perf_counter() - t0


def recs_of(model, users, candidates=None) -> np.ndarray:
    out = []
    for s in range(0, len(users), 1024):
        out.append(model.recommend(users[s : s + 1024], n=K, candidates=candidates)[0])
    return np.concatenate(out)


def with_vectors(model, rows, vectors, prior=None):
    """Add ``rows`` to ``model`` with the given vectors instead of the content ones (same
    prior, same code path)."""
    from recogan.catalog import add_items

    feats = model.features_
    neighbours = feats.content_neighbours  # kept: the prior still comes from the content
    feats.transform = lambda catalog, **kw: vectors
    feats.content_neighbours = lambda catalog, F, k: (vectors, *neighbours(catalog, F, k)[1:])
    return add_items(model, rows, prior=prior)


def unit(X: np.ndarray) -> np.ndarray:
    return (X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def metrics(recs, T) -> dict:
    m = mean_metrics(ranking_metrics(recs, T, ks=(K,)))
    return {"HR@10": m[f"HR@{K}"], "NDCG@10": m[f"NDCG@{K}"]}


# ---------------------------------------------------------------------- run
def run(args) -> dict:
    with tempfile.TemporaryDirectory(prefix="new_items-") as tmp:
        return _run(args, Path(tmp))


def _run(args, tmp: Path) -> dict:
    from recogan.artifacts import load_model
    from recogan.catalog import add_items
    from recogan.data import Dataset

    ev, cat = frames()
    cut = int(pd.Timestamp(args.cut).value // 10**9)
    end = cut + args.weeks * 7 * DAY
    first = ev.groupby("item_id")["timestamp"].min()
    old_ids = first.index[first < cut]
    # known at the cut: every catalog product without a sale before it (issue 23), never
    # "the products that will sell in the window"
    new_ids = pd.Index(cat["item_id"][~cat["item_id"].isin(old_ids)])
    in_window = first.index[(first >= cut) & (first < end)]
    before = ev[ev["timestamp"] < cut]
    old = Dataset.from_frames(
        before,
        cat[cat["item_id"].isin(old_ids)],
        category_col=None,
        name="online_retail<cut",
    )
    log.info(
        "%s; %d new products added at the cut, %d of them first sold in the window",
        old,
        len(new_ids),
        len(in_window),
    )
    cache = Path(args.cache) if args.cache else None
    if cache is not None and (cache / "fit.json").is_file():
        model = load_model(cache / "base")
        if model.fingerprint_ != old.fingerprint():
            raise ValueError(f"{cache}: the cached model was fitted on other data")
        info = json.loads((cache / "fit.json").read_text())
        epochs, fit_s, total_s = info["epochs"], info["fit_s"], info["total_s"]
        log.info("using the model cached in %s", cache)
    else:
        model, epochs, fit_s, total_s = fit_model(old, cut, args.valid_days, args.epochs)
        if cache is not None:
            save_model(model, cache / "base")
            info = {"epochs": epochs, "fit_s": fit_s, "total_s": total_s}
            (cache / "fit.json").write_text(json.dumps(info))
    save_model(model, tmp / "base")
    n_old = model.n_items_

    rows = cat[cat["item_id"].isin(new_ids)].reset_index(drop=True)
    content = load_model(tmp / "base")
    t0 = time.perf_counter()
    new_idx = add_items(content, rows)
    add_s = time.perf_counter() - t0
    N = content.n_items_

    # test customers and their targets, in the index space after the addition
    win = ev[(ev["timestamp"] >= cut) & (ev["timestamp"] < end)]
    u = content.users_.lookup(win["user_id"].to_numpy(), missing="ignore")
    i = content.items_.lookup(win["item_id"].to_numpy(), missing="ignore")
    keep = (u >= 0) & (i >= 0)
    T = sp.csr_matrix(
        (np.ones(int(keep.sum()), np.float32), (u[keep], i[keep])), shape=(model.n_users_, N)
    )
    T.data[:] = 1.0
    seen = content.seen_
    T = T - T.multiply(seen)
    T.eliminate_zeros()
    users = np.flatnonzero(np.diff(T.indptr) > 0)
    T_all = T[users]
    is_new = np.zeros(N, dtype=bool)
    is_new[n_old:] = True
    T_new = T_all.multiply(sp.csr_matrix(is_new[None, :].astype(np.float32))).tocsr()
    T_old = (T_all - T_new).tocsr()
    T_new.eliminate_zeros(), T_old.eliminate_zeros()
    has_new = np.diff(T_new.indptr) > 0
    has_old = np.diff(T_old.indptr) > 0
    new_users = users[has_new]
    log.info("%d test customers, %d bought a new product", len(users), len(new_users))

    out: dict = {
        "cut": args.cut,
        "weeks": args.weeks,
        "old_products": n_old,
        "new_products": len(new_ids),
        "new_products_first_sold_in_window": len(in_window),
        "new_products_bought_by_test_customers": int((np.diff(T_new.tocsc().indptr) > 0).sum()),
        "test_customers": len(users),
        "test_customers_buying_new": len(new_users),
        "purchases_of_new_products": int(T_new.nnz),
        "epochs": epochs,
        "fit_seconds": round(fit_s, 1),
        "fit_seconds_with_validation": round(total_s, 1),
        "add_items_seconds": round(add_s, 3),
        "new_item_prior": float(np.median(content.item_index_[n_old:, -1])),
    }
    launched, days = model.launches()
    buyers_old = np.diff(model.seen_.tocsc().indptr)
    P = model.item_index_[:, -1]
    out["launches"] = {
        "count": len(launched),
        "days": days,
        "prior_median": float(np.median(P[launched])) if len(launched) else None,
        "prior_buyer_weighted": (
            float(np.average(P[launched], weights=buyers_old[launched])) if len(launched) else None
        ),
        # where the new products' priors sit among the old products' (share above them)
        "old_above_new_median": float((P > out["new_item_prior"]).mean()),
    }

    # overall, without and with the new products
    recs_without = recs_of(model, users)
    recs_with = recs_of(content, users)
    out["overall"] = {
        "without new products": metrics(recs_without, T_all),
        "with new products (content)": metrics(recs_with, T_all),
    }
    out["old_purchases"] = {
        "without new products": metrics(recs_without[has_old], T_old[has_old]),
        "with new products (content)": metrics(recs_with[has_old], T_old[has_old]),
    }
    out["lists_with_a_new_product"] = float((recs_with >= n_old).any(1).mean())

    # the GAN's placement rules: collaborative part imputed or not, prior rule
    Tn = T_new[has_new]
    variants = {}
    for k_nb, prior, weights in VARIANTS:
        m = load_model(tmp / "base")
        m.NEW_ITEM_NEIGHBOURS, m.NEW_ITEM_PRIOR = k_nb, prior
        if weights is not None:
            m.NEW_ITEM_LAUNCH_WEIGHTS = weights
        add_items(m, rows)
        recs = recs_of(m, users)
        name = f"neighbours={k_nb}, prior={prior}" + (f", weights={weights}" if weights else "")
        variants[name] = {
            "new": metrics(recs[has_new], Tn),
            "all": metrics(recs, T_all),
            "old": metrics(recs[has_old], T_old[has_old]),
            "lists_with_new": float((recs >= n_old).any(1).mean()),
            "prior": float(np.median(m.item_index_[n_old:, -1])),
        }
    out["variants"] = variants
    out["default_variant"] = (
        f"neighbours={content.NEW_ITEM_NEIGHBOURS}, prior={content.NEW_ITEM_PRIOR}, "
        f"weights={content.NEW_ITEM_LAUNCH_WEIGHTS}"
    )

    # new products' purchases, ranked among all products
    among_all = {"content (GAN)": metrics(recs_with[has_new], Tn)}
    d = content.F_.shape[1]
    rand = []
    for seed in range(3):
        m = load_model(tmp / "base")
        vec = unit(np.random.default_rng(seed).standard_normal((len(rows), d)))
        with_vectors(m, rows, vec)
        rand.append(metrics(recs_of(m, new_users), Tn))
    among_all["random vector"] = {k: float(np.mean([r[k] for r in rand])) for k in rand[0]}
    word_old = pd.Series([first_word(t) for t in old.catalog["title"]])
    buyers = np.diff(model.seen_.tocsc().indptr)
    ranked = pd.DataFrame({"word": word_old, "buyers": buyers}).sort_values(
        "buyers", ascending=False, kind="stable"
    )
    top = ranked.drop_duplicates("word")  # each word's best-selling old product
    best_idx = dict(zip(top["word"], top.index))
    words_new = [first_word(t) for t in rows["title"]]
    matched = np.array([w in best_idx and w != "" for w in words_new])
    top_item = int(np.argmax(buyers))
    pick = np.array([best_idx[w] if ok else top_item for w, ok in zip(words_new, matched)])
    m = load_model(tmp / "base")
    with_vectors(m, rows, unit(model.F_[pick]))
    among_all["category bestseller vector"] = metrics(recs_of(m, new_users), Tn)
    out["category_matched_share"] = float(matched.mean())
    out["among_all_products"] = among_all

    # how hard to push new products: a fixed prior, content vs random vectors at each
    sweep = {}
    vec = unit(np.random.default_rng(0).standard_normal((len(rows), d)))
    for pr in PRIOR_SWEEP:
        m = load_model(tmp / "base")
        add_items(m, rows, prior=pr)
        recs = recs_of(m, users)
        r = load_model(tmp / "base")
        with_vectors(r, rows, vec, prior=pr)
        sweep["model's rule" if pr is None else f"{pr:g}"] = {
            "content": metrics(recs[has_new], Tn),
            "random vector": metrics(recs_of(r, new_users), Tn),
            "all": metrics(recs, T_all),
            "lists_with_new": float((recs >= n_old).any(1).mean()),
        }
    out["prior_sweep"] = sweep

    # new products' purchases, ranked among the new products only
    Tn_only = Tn[:, n_old:]
    cand = np.asarray(new_idx)
    among_new = {"content (GAN)": metrics(recs_of(content, new_users, cand) - n_old, Tn_only)}
    for k_nb, prior in ((20, "median"), (0, "median")):
        m = load_model(tmp / "base")
        m.NEW_ITEM_NEIGHBOURS, m.NEW_ITEM_PRIOR = k_nb, prior
        add_items(m, rows)
        among_new[f"GAN, neighbours={k_nb}, prior={prior}"] = metrics(
            recs_of(m, new_users, cand) - n_old, Tn_only
        )
    perm = []
    M = len(cand)
    for seed in range(20):
        g = np.random.default_rng(seed)
        recs = np.stack([g.permutation(M)[:K] for _ in range(len(new_users))])
        perm.append(metrics(recs, Tn_only))
    among_new["random order"] = {k: float(np.mean([p[k] for p in perm])) for k in perm[0]}
    words = pd.Series(words_new)
    cat_sales = pd.Series(word_old.to_numpy()).value_counts()
    X = content.seen_[new_users][:, :n_old].tocoo()
    own = pd.DataFrame({"u": X.row, "w": word_old.to_numpy()[X.col]}).value_counts()
    glob = words.map(cat_sales).fillna(0).to_numpy(np.float64)
    g = np.random.default_rng(0)
    tie = g.random(M) * 1e-6
    scores_global = np.broadcast_to(glob + tie, (len(new_users), M))
    mine = np.zeros((len(new_users), M))
    for (r, w), c in own.items():
        mine[r, (words == w).to_numpy()] = c
    scores_own = mine + (glob + tie)[None, :] / (glob.max() + 1.0)
    for name, S in (
        ("category popularity (customer's own)", scores_own),
        ("category popularity (overall)", scores_global),
    ):
        recs = np.argsort(-S, axis=1, kind="stable")[:, :K]
        among_new[name] = metrics(recs, Tn_only)
    out["among_new_products"] = among_new
    return out


# ---------------------------------------------------------------------- report
def table(out: dict) -> str:
    lines = [
        f"Cut {out['cut']}, window {out['weeks']} weeks: {out['old_products']:,} products sold "
        f"before the cut, {out['new_products']:,} new ones (not sold before it) added at the "
        f"cut, {out.get('new_products_first_sold_in_window', float('nan')):,} of them first "
        "sold in the window "
        f"({out['new_products_bought_by_test_customers']:,} of them bought by test customers); "
        f"{out['test_customers']:,} test customers, {out['test_customers_buying_new']:,} of "
        f"whom bought a new product ({out['purchases_of_new_products']:,} such purchases). "
        f"GAN: defaults, {out['epochs']} epoch(s) (early stopping), refit "
        f"{out['fit_seconds']:.0f} s; `add_items` of all {out['new_products']:,} new products "
        f"{out['add_items_seconds'] * 1000:.0f} ms; new-product prior (median) "
        f"{out['new_item_prior']:.3f}{_launch_note(out)}.",
        "",
        "New products' purchases (customers who bought one), ranked among all products:",
        "",
        "| placement | HR@10 | NDCG@10 | HR@10 vs random |",
        "|---|---|---|---|",
    ]
    base = out["among_all_products"]["random vector"]["HR@10"]
    n = out["test_customers_buying_new"]
    for name, m in out["among_all_products"].items():
        lines.append(
            f"| {name} | {m['HR@10']:.4f} ({round(m['HR@10'] * n)} of {n}) | "
            f"{m['NDCG@10']:.4f} | {_ratio(m['HR@10'], base)} |"
        )
    lines += [
        "",
        f"(category matched for {out['category_matched_share']:.0%} of the new products)",
        "",
        "Ranked among the new products only:",
        "",
        "| ranking | HR@10 | NDCG@10 | HR@10 vs random |",
        "|---|---|---|---|",
    ]
    base = out["among_new_products"]["random order"]["HR@10"]
    for name, m in out["among_new_products"].items():
        lines.append(
            f"| {name} | {m['HR@10']:.4f} | {m['NDCG@10']:.4f} | {_ratio(m['HR@10'], base)} |"
        )
    lines += [
        "",
        "Every purchase of the window (all test customers), and the old products' purchases only:",
        "",
        "| | NDCG@10 | HR@10 | NDCG@10, old products' purchases |",
        "|---|---|---|---|",
    ]
    for name in out["overall"]:
        a, o = out["overall"][name], out["old_purchases"][name]
        lines.append(f"| {name} | {a['NDCG@10']:.4f} | {a['HR@10']:.4f} | {o['NDCG@10']:.4f} |")
    lines += [
        "",
        f"Top-10 lists holding at least one new product: {out['lists_with_a_new_product']:.1%}.",
    ]
    lines += [
        "",
        "A fixed prior for every new product (`add_items(prior=...)`), content against random "
        "vectors at the same prior:",
        "",
        "| prior | content HR@10 | content NDCG@10 | random vector HR@10 | HR@10 vs random | "
        "all purchases NDCG@10 | lists with a new product |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, v in out["prior_sweep"].items():
        c, r = v["content"]["HR@10"], v["random vector"]["HR@10"]
        lines.append(
            f"| {name} | {c:.4f} | {v['content']['NDCG@10']:.4f} | {r:.4f} | {_ratio(c, r)} "
            f"| {v['all']['NDCG@10']:.4f} | {v['lists_with_new']:.1%} |"
        )
    lines += [
        "",
        f"The GAN's placement rules (default: {out['default_variant']}):",
        "",
        "| rule | prior (median) | new products HR@10 | NDCG@10 | all purchases NDCG@10 "
        "(vs without) | old products NDCG@10 | lists with a new product |",
        "|---|---|---|---|---|---|---|",
    ]
    without = out["overall"]["without new products"]["NDCG@10"]
    for name, v in out["variants"].items():
        rel = v["all"]["NDCG@10"] / without - 1 if without > 0 else 0.0
        lines.append(
            f"| {name} | {v['prior']:.3f} | {v['new']['HR@10']:.4f} | {v['new']['NDCG@10']:.4f} "
            f"| {v['all']['NDCG@10']:.4f} ({rel:+.1%}) | {v['old']['NDCG@10']:.4f} "
            f"| {v['lists_with_new']:.1%} |"
        )
    return "\n".join(lines)


def _launch_note(out: dict) -> str:
    la = out.get("launches")
    if not la:
        return ""
    if la["prior_median"] is None:
        return f"; {la['count']} recent launches"
    return (
        f" (above that of {1 - la['old_above_new_median']:.0%} of the old products); "
        f"{la['count']} recent launches (first sold in the last {la['days']} days of "
        f"training), median prior {la['prior_median']:.3f}, weighted by buyers "
        f"{la.get('prior_buyer_weighted', float('nan')):.3f}"
    )


def _ratio(x: float, base: float) -> str:
    return f"{x / base:.1f}x" if base > 0 else ("n/a (random: 0)" if x > 0 else "-")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cut", default="2011-10-01", help="train before this date")
    p.add_argument("--weeks", type=int, default=4, help="window of new products after the cut")
    p.add_argument("--valid-days", type=float, default=30.0, help="early-stopping window")
    p.add_argument("--epochs", type=int, help="skip the validation fit: train this many epochs")
    p.add_argument("--out", help="write the results as JSON here")
    p.add_argument(
        "--cache", help="keep the fitted model here and reuse it on the next run (same cut)"
    )
    p.add_argument("--table", metavar="JSON", help="print the table of a saved run and exit")
    args = p.parse_args(argv)
    if args.table:
        print(table(json.loads(Path(args.table).read_text())))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    out = run(args)
    out["machine"] = f"{platform.machine()}, {os.cpu_count()} cores"
    out["date"] = date.today().isoformat()
    out["command"] = "python benchmarks/new_items.py " + " ".join(argv or sys.argv[1:])
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2))
    print(table(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

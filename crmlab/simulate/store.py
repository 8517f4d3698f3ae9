"""A simulated store with planted truth, so every crmlab statistic can be checked.

The purchase process (per customer, all random draws from one seeded generator):

* Acquisition: first paid order on a day between ``start`` and ``end`` (more on the
  Double-11 and 618 promotion days), at a random time of day.
* Big promotions (大促): each year a share of the repeat orders due in the 30 days after
  Double 11 (11-11) and 618 (06-18) is pulled into the 10-day warm-up or onto the day
  itself, drawn from a separate seeded generator so every other draw is unchanged. A
  pull keeps each customer's order sequence and the side of ``window_days`` every gap
  falls on, so the planted repurchase rates stay exact; truth.json records the pulls
  and each promotion's day and warm-up figures (new/old as in ``crmlab.promotion.plan``).
* Repurchase chain with a planted **magic number**: after the k-th paid order the
  customer places order k+1 within ``window_days`` (90) with probability
  ``repurchase_rate[k]``, which rises with k and is flat from k = M on (default M = 3:
  0.30, 0.45, then 0.62). The gap, given a repurchase inside the window, is a truncated
  exponential whose scale is the customer's own tempo (heterogeneous, Gamma distributed).
* Customer heterogeneity (selection): each customer has a persistent propensity z ~ N(0, 1)
  (its own seeded generator), and P(order k+1 within the window) = expit(a_k +
  ``propensity_sd`` * z). Customers who reach k orders are therefore a selected group: a_k
  is solved at each k so that the mean over the customers whose k-th order is at least the
  window before the observation end (the ones the data can judge) is exactly
  ``repurchase_rate[k]``. The planted curve is the population's, an association; a typical
  customer's own chance (z = 0) and the mean chance if every buyer reached k orders rise
  less and fall after M (truth.json ``propensity``). ``propensity_sd = 0`` gives the
  old, homogeneous chain draw for draw.
* Buy-till-you-die: a customer who does not repurchase inside the window drops out
  (dies) with a per-customer probability ``dropout ~ Beta(a, b)``; the death time lies
  uniformly within the window after the last order. A survivor returns after a long gap
  (window + exponential with a per-customer mean).
* Spend: Gamma-Gamma. Each customer's spend rate ``nu ~ Gamma(q, scale=1/v)``, each
  paid order's amount ``~ Gamma(p, scale=1/nu)`` (lifetimes' GammaGammaFitter
  parametrisation), rounded to cents; orders are split into 1-3 lines.
* Noise the loader must handle: unpaid (潜客 customers have only unpaid orders),
  refunded and cancelled orders, added beside the paid chain so the chain's truth stays
  exact.
* One SMS campaign (2025-11-01, Double-11 warm-up): customers whose last paid order is
  within a year are randomised per customer to copy A/B x 10:00/17:00 plus a
  no-message holdout, a fifth each (the holdout's virtual send time split between 10:00 and
  17:00). A delivered message adds a planted extra chance of a paid order inside 72 hours,
  larger for customers who bought more in the 90 days before (persistent levels: mean 1 over
  the targeted); 17:00 works better, copy does not matter (so the cheaper copy A wins). Campaign orders are added
  beside the chain (they nudge the 90-day rates of k-th orders placed in the 90 days
  before the campaign by about a tenth of a point; truth.json records this).

``truth.json`` records every planted number; ``truth_customers.csv`` each customer's
death time (empty when alive at the observation end), so P(alive) can be scored.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from crmlab.experiments.sms import sms_segments

__all__ = ["StoreSpec", "simulate_store", "write_sample", "simulate_bgnbd"]

CHANNELS = ("天猫", "抖音", "微信小程序", "京东")
CHANNEL_P = (0.45, 0.25, 0.2, 0.1)
REGIONS = ("广东", "浙江", "江苏", "上海", "北京", "四川", "山东", "湖北", "福建", "河南")
REGION_P = (0.18, 0.14, 0.12, 0.1, 0.09, 0.09, 0.08, 0.07, 0.07, 0.06)
CATEGORIES = {  # category -> (products, consumption days per unit)
    "宠物食品": (("狗粮2kg", "猫粮1.5kg", "冻干零食"), 7),
    "面膜": (("补水面膜10片", "美白面膜5片"), 30),
    "服装": (("卫衣", "羽绒服", "T恤"), 90),
    "零食": (("坚果礼盒", "牛肉干"), 14),
}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN = "晓梦雨思佳欣子涵一诺可馨宇轩浩然俊杰嘉怡雅静文博"
SUFFIX = ("呀", "酱", "同学", "宝宝", "妈妈", "不吃香菜", "的小店铺", "Love")
STORE = "好物旗舰店"
COPY = {
    "A": "亲{nickname}，双11预热开启！满199减30，戳 t.cn/hw11 领券【" + STORE + "】",
    "B": ("亲爱的{nickname}，双11预热今天开始啦！11月1日至11日全场满199减30，"
          "老客专享5元无门槛券已放入您的账户，每晚9点1元秒杀，爆款限量先到先得，"
          "戳 t.cn/hw11 立即领取，退订回T【" + STORE + "】"),
}


@dataclass(frozen=True)
class StoreSpec:
    """Every planted parameter of the simulated store (all recorded in truth.json)."""

    n_customers: int = 20_000
    seed: int = 0
    start: str = "2024-01-01"
    end: str = "2025-12-31 23:59:59"
    window_days: int = 90
    magic_number: int = 3
    repurchase_rate: tuple[float, ...] = (0.30, 0.45, 0.62)  # k = 1, 2, M..: flat from M on
    tempo_shape: float = 2.0          # gap scale (days) ~ Gamma(shape, scale = mean / shape)
    tempo_mean_days: float = 25.0
    return_gap_mean_days: float = 150.0  # a survivor's extra gap beyond the window
    dropout_a: float = 2.0            # dropout ~ Beta(a, b)
    dropout_b: float = 1.5
    spend_p: float = 5.0              # Gamma-Gamma: amount ~ Gamma(p, 1/nu), nu ~ Gamma(q, 1/v)
    spend_q: float = 4.0
    spend_v: float = 60.0
    potential_share: float = 0.03     # customers with only unpaid orders
    unpaid_share: float = 0.06        # extra unpaid / refunded / cancelled orders per paid order
    refunded_share: float = 0.03
    cancelled_share: float = 0.02
    campaign_id: str = "2025双11预热"
    campaign_date: str = "2025-11-01"
    campaign_lookback_days: int = 365
    holdout_share: float = 0.20  # equal fifths: the CLI's default planned split for SRM
    arms: tuple[str, ...] = ("A@10:00", "A@17:00", "B@10:00", "B@17:00")
    extra_conversion: tuple[float, ...] = (0.02, 0.04, 0.02, 0.04)  # per arm, if delivered
    delivery_rate: float = 0.97
    price_per_message: float = 0.05
    attribution_hours: int = 72
    promotions: tuple[tuple[str, str, float], ...] = (("double11", "11-11", 0.45), ("618", "06-18", 0.25))
    promotion_pull_days: int = 30     # repeat orders due D+1..D+30 may be pulled (share per promotion)
    promotion_warm_up_days: int = 10  # into D-10..D-1 or onto D
    promotion_day_share: float = 0.6  # of the pulled orders, the share placed on D
    propensity_sd: float = 0.8        # logit-scale sd of each customer's persistent repurchase propensity

    def rate(self, k: np.ndarray | int) -> np.ndarray:
        """Planted P(order k+1 within the window | k orders)."""
        idx = np.minimum(np.asarray(k), len(self.repurchase_rate)) - 1
        return np.asarray(self.repurchase_rate)[idx]


def _expit(x):
    return 1.0 / (1.0 + np.exp(-x))


def _solve_intercept(rate: float, shift: np.ndarray) -> float:
    """The a with mean(expit(a + shift)) = rate (bisection on a monotone function)."""
    lo, hi = -40.0, 40.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if _expit(mid + shift).mean() < rate:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _day_weights(days: pd.DatetimeIndex) -> np.ndarray:
    w = np.linspace(1.0, 1.6, len(days))  # the store grows
    md = days.strftime("%m-%d")
    w = w * np.where(np.isin(md, ["11-11", "11-10", "11-12"]), 6.0, 1.0)
    w = w * np.where(np.isin(md, ["06-18", "06-17"]), 3.0, 1.0)
    return w / w.sum()


def _promotion_pull(paid: pd.DataFrame, spec: StoreSpec) -> tuple[pd.DataFrame, dict]:
    """Pull repeat orders due in the ``promotion_pull_days`` after each promotion day into
    its warm-up or onto the day, keeping each gap on its side of ``window_days``."""
    rng = np.random.default_rng([spec.seed, 1111])
    idx = paid.sort_values(["cust", "k"], kind="stable").index
    t = paid.loc[idx, "order_time"].to_numpy().copy()
    cust, k = paid.loc[idx, "cust"].to_numpy(), paid.loc[idx, "k"].to_numpy()
    has_next = np.r_[cust[1:] == cust[:-1], False]
    day, hour = np.timedelta64(1, "D"), np.timedelta64(1, "h")
    W = np.timedelta64(spec.window_days, "D")
    start, end = pd.Timestamp(spec.start), pd.Timestamp(spec.end)
    out: dict = {}
    for name, md, share in spec.promotions:
        for year in range(start.year, end.year + 1):
            D = pd.Timestamp(f"{year}-{md}")
            if D - pd.Timedelta(days=spec.promotion_warm_up_days) < start or D + pd.Timedelta(days=31) > end:
                continue
            lo = np.datetime64(D + pd.Timedelta(days=1))
            cand = np.flatnonzero((t >= lo) & (t < lo + spec.promotion_pull_days * day) & (k >= 2))
            pull = rng.uniform(size=len(cand)) < share
            on_day = rng.uniform(size=len(cand)) < spec.promotion_day_share
            back = rng.integers(1, spec.promotion_warm_up_days + 1, len(cand))
            secs = rng.uniform(8 * 3600, 24 * 3600, len(cand))
            n = {"pulled_to_day": 0, "pulled_to_warm_up": 0, "kept_by_gap_rule": 0}
            for j, i in enumerate(cand):
                if not pull[j]:
                    continue
                new = np.datetime64(D - pd.Timedelta(days=0 if on_day[j] else int(back[j]))
                                    + pd.Timedelta(seconds=float(secs[j])))
                ok = new - t[i - 1] > hour and (t[i] - t[i - 1] <= W or new - t[i - 1] > W + day)
                if has_next[i]:
                    ok = ok and (t[i + 1] - t[i] > W or t[i + 1] - new <= W - day)
                if ok:
                    t[i] = new
                    n["pulled_to_day" if on_day[j] else "pulled_to_warm_up"] += 1
                else:
                    n["kept_by_gap_rule"] += 1
            out.setdefault(name, {})[str(year)] = {"date": f"{D:%Y-%m-%d}", **n}
    paid = paid.copy()
    paid.loc[idx, "order_time"] = t
    return paid, out


def _promotion_truth(allo: pd.DataFrame, spec: StoreSpec, pulls: dict) -> dict:
    """Pulls and each promotion's warm-up and day figures (paid orders, new = first paid
    order on or after D-71, the default period's start), computed here with plain pandas."""
    p = allo[allo["status"] == "paid"]
    first = p.groupby("cust")["order_time"].min().dt.normalize()
    day = p["order_time"].dt.normalize()
    out = {"pull_days": spec.promotion_pull_days, "warm_up_days": spec.promotion_warm_up_days,
           "day_share": spec.promotion_day_share, "first_order_weights": {"11-10..11-12": 6.0, "06-17..06-18": 3.0}}
    for name, md, share in spec.promotions:
        years = {}
        for year, n in pulls.get(name, {}).items():
            D = pd.Timestamp(n["date"])
            new = first.reindex(p["cust"]).to_numpy() >= np.datetime64(D - pd.Timedelta(days=71))
            figs = {}
            for ph, (a, b) in {"warm_up": (-10, -1), "day": (0, 0)}.items():
                m = ((day >= D + pd.Timedelta(days=a)) & (day <= D + pd.Timedelta(days=b))).to_numpy()
                figs[ph] = {"orders": int(m.sum()), "sales": round(float(p["amount"].to_numpy()[m].sum()), 2),
                            "new_buyers": int(p["cust"][m & new].nunique()),
                            "old_buyers": int(p["cust"][m & ~new].nunique()),
                            "old_orders": int((m & ~new).sum()),
                            "old_sales": round(float(p["amount"].to_numpy()[m & ~new].sum()), 2)}
            years[year] = {**n, **figs}
        out[name] = {"month_day": md, "pull_share": share, "years": years}
    return out


def simulate_store(spec: StoreSpec = StoreSpec()) -> tuple[pd.DataFrame, pd.DataFrame, dict, pd.DataFrame]:
    """Simulate the store.

    Returns
    -------
    orders : DataFrame
        Order lines as a store would export them (``customer_id, order_id, order_time,
        amount, status, channel, region, product, category, quantity, nickname, phone``).
    sends : DataFrame
        The campaign's SMS log.
    truth : dict
        Everything planted (written as truth.json).
    customers : DataFrame
        Per customer: ``customer_id, death_time, paid_orders`` (truth_customers.csv).
    """
    rng = np.random.default_rng(spec.seed)
    start = pd.Timestamp(spec.start)
    end = pd.Timestamp(spec.end)
    n = spec.n_customers
    ids = np.array([f"C{i:06d}" for i in range(1, n + 1)])
    days = pd.date_range(start, end.normalize(), freq="D")

    n_pot = int(round(n * spec.potential_share))
    is_pot = np.zeros(n, dtype=bool)
    is_pot[rng.choice(n, n_pot, replace=False)] = True
    buyers = np.flatnonzero(~is_pot)
    nb = len(buyers)

    day0 = rng.choice(len(days), size=n, p=_day_weights(days))
    first = days.values[day0] + (rng.uniform(8 * 3600, 24 * 3600, n) * 1e9).astype("timedelta64[ns]")
    tempo = rng.gamma(spec.tempo_shape, spec.tempo_mean_days / spec.tempo_shape, n)
    dropout = rng.beta(spec.dropout_a, spec.dropout_b, n)
    ret_mean = rng.gamma(2.0, spec.return_gap_mean_days / 2.0, n)
    nu = rng.gamma(spec.spend_q, 1.0 / spec.spend_v, n)
    channel = rng.choice(len(CHANNELS), n, p=CHANNEL_P)
    region = rng.choice(len(REGIONS), n, p=REGION_P)
    cat_names = list(CATEGORIES)
    cat = rng.choice(len(cat_names), n, p=(0.35, 0.25, 0.2, 0.2))

    # repurchase chain, vectorised over customers one order number at a time
    day_ns = np.timedelta64(86_400_000_000_000, "ns")
    times = [first[buyers]]
    ks = [np.ones(nb, dtype=int)]
    who = [buyers]
    death = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    cur_t, cur_i, k = first[buyers], buyers, 1
    z = np.random.default_rng([spec.seed, 2222]).standard_normal(n)  # persistent propensity, own generator
    own: dict[int, float] = {}  # k -> a_k
    while len(cur_i):
        q = spec.rate(k)
        if spec.propensity_sd > 0:
            judged = cur_t <= np.datetime64(end - pd.Timedelta(days=spec.window_days))
            a_k = _solve_intercept(float(q), spec.propensity_sd * z[cur_i[judged] if judged.any() else cur_i])
            q = _expit(a_k + spec.propensity_sd * z[cur_i])
            if k <= 10:
                own[k] = a_k
        u_rep = rng.uniform(size=len(cur_i))
        s = tempo[cur_i]
        u_gap = rng.uniform(size=len(cur_i))
        gap_in = -s * np.log1p(-u_gap * (1.0 - np.exp(-spec.window_days / s)))
        gap_in = np.clip(gap_in, 1.0 / 24, spec.window_days - 1.0 / 24)
        dies = rng.uniform(size=len(cur_i)) < dropout[cur_i]
        death_at = rng.uniform(0, spec.window_days, len(cur_i))
        gap_out = spec.window_days + rng.exponential(ret_mean[cur_i])
        rep = u_rep < q
        gap = np.where(rep, gap_in, gap_out)
        nxt = cur_t + (gap * day_ns.astype(float)).astype("timedelta64[ns]")
        died = ~rep & dies
        death[cur_i[died]] = cur_t[died] + (death_at[died] * day_ns.astype(float)).astype("timedelta64[ns]")
        cont = ~died & (nxt <= np.datetime64(end))
        cur_t, cur_i, k = nxt[cont], cur_i[cont], k + 1
        times.append(cur_t)
        ks.append(np.full(len(cur_i), k))
        who.append(cur_i)
    paid = pd.DataFrame({"cust": np.concatenate(who), "order_time": np.concatenate(times),
                         "k": np.concatenate(ks)})
    paid["status"] = "paid"
    paid["source"] = "chain"
    paid, pulls = _promotion_pull(paid, spec)

    # the campaign
    camp_day = pd.Timestamp(spec.campaign_date)
    before = paid[paid["order_time"] < camp_day]
    last_before = before.groupby("cust")["order_time"].max()
    targeted = last_before.index[last_before >= camp_day - pd.Timedelta(days=spec.campaign_lookback_days)].to_numpy()
    targeted = np.sort(targeted)
    arm_names = list(spec.arms) + ["holdout"]
    arm_p = [(1 - spec.holdout_share) / len(spec.arms)] * len(spec.arms) + [spec.holdout_share]
    arm = rng.choice(len(arm_names), len(targeted), p=arm_p)
    is_hold = arm == len(spec.arms)
    delivered = np.where(is_hold, False, rng.uniform(size=len(targeted)) < spec.delivery_rate)
    arm_hours = [10 if "10:00" in a else 17 for a in spec.arms]
    # the holdout's clock: a virtual send at each tested time, split at random (own generator:
    # every other draw unchanged), so each arm is compared with a holdout on the same clock
    clock = np.random.default_rng([spec.seed, 1700]).choice(sorted(set(arm_hours)), len(targeted))
    hour = np.where(is_hold, clock, np.array(arm_hours + [0])[arm])
    send_time = (camp_day + pd.to_timedelta(hour, unit="h")
                 + pd.to_timedelta(rng.integers(0, 600, len(targeted)), unit="s"))
    # persistent levels: the response to a message follows the customer's recent buying,
    # weight (0.05 + paid orders in the 90 days before)^2, mean 1 over the targeted (so each
    # arm's average extra chance is as planted, and CUPED has something to remove)
    recent = before[before["order_time"] >= camp_day - pd.Timedelta(days=90)].groupby("cust").size()
    weight = 0.05 + recent.reindex(targeted, fill_value=0).to_numpy() ** 2.0
    weight = weight / weight.mean()
    extra = np.minimum(np.append(np.asarray(spec.extra_conversion), 0.0)[arm] * weight, 1.0)
    converts = delivered & (rng.uniform(size=len(targeted)) < extra)
    conv_time = send_time[converts] + pd.to_timedelta(rng.uniform(0.5, spec.attribution_hours - 2, converts.sum()), unit="h")
    camp_orders = pd.DataFrame({"cust": targeted[converts], "order_time": conv_time.values,
                                "k": 0, "status": "paid", "source": "campaign"})
    # natural (chain) conversions inside the window, for the truth of each arm's rate
    win_end = send_time + pd.Timedelta(hours=spec.attribution_hours)
    chain_idx = paid.set_index("cust")["order_time"]
    nat = np.zeros(len(targeted), dtype=bool)
    pos = {c: i for i, c in enumerate(targeted)}
    sel = chain_idx[chain_idx.index.isin(targeted)]
    ti = np.array([pos[c] for c in sel.index])
    if len(ti):
        inside = (sel.values >= send_time.values[ti]) & (sel.values <= win_end.values[ti])
        nat[ti[inside]] = True
    natural_rate = float(nat.mean())

    # noise orders: unpaid, refunded, cancelled, and potential customers' unpaid orders
    n_paid = len(paid)
    noise = []
    for status, share in (("unpaid", spec.unpaid_share), ("refunded", spec.refunded_share),
                          ("cancelled", spec.cancelled_share)):
        m = int(round(n_paid * share))
        c = rng.choice(buyers, m)
        t = first[c] + (rng.uniform(0, 1, m) * np.maximum(
            (np.datetime64(end) - first[c]) / np.timedelta64(1, "s"), 0) * 1e9).astype("timedelta64[ns]")
        noise.append(pd.DataFrame({"cust": c, "order_time": t, "k": 0, "status": status, "source": "noise"}))
    pot = np.flatnonzero(is_pot)
    noise.append(pd.DataFrame({"cust": pot, "order_time": first[pot], "k": 0, "status": "unpaid",
                               "source": "potential"}))
    allo = pd.concat([paid, camp_orders, *noise], ignore_index=True)
    allo = allo.sort_values(["order_time", "cust"], kind="stable").reset_index(drop=True)
    allo["order_time"] = allo["order_time"].dt.floor("s")
    m = len(allo)
    allo["order_id"] = [f"O{i:08d}" for i in range(1, m + 1)]
    allo["amount"] = np.round(rng.gamma(spec.spend_p, 1.0 / nu[allo["cust"].to_numpy()]), 2)
    allo["amount"] = np.maximum(allo["amount"], 0.01)

    # split orders into lines
    n_lines = rng.choice([1, 2, 3], m, p=[0.6, 0.3, 0.1])
    rep_idx = np.repeat(np.arange(m), n_lines)
    lines = allo.iloc[rep_idx].reset_index(drop=True)
    line_no = np.concatenate([np.arange(x) for x in n_lines]) if m else np.array([], int)
    shares = rng.dirichlet(np.ones(3), m)
    part = shares[rep_idx, line_no]
    part = part / np.bincount(rep_idx, weights=part, minlength=m)[rep_idx]
    cents = np.round(lines["amount"].to_numpy() * 100).astype(np.int64)
    line_cents = np.floor(cents * part).astype(np.int64)
    last = np.r_[np.diff(rep_idx) != 0, True]
    fix = cents - np.bincount(rep_idx, weights=line_cents, minlength=m).astype(np.int64)[rep_idx]
    line_cents = line_cents + np.where(last, fix, 0)
    cust_i = lines["cust"].to_numpy()
    ccat = cat[cust_i]
    prod = np.array([CATEGORIES[cat_names[c]][0][int(x) % len(CATEGORIES[cat_names[c]][0])]
                     for c, x in zip(ccat, rng.integers(0, 6, len(lines)))])
    qty = rng.choice([1, 1, 1, 2, 3], len(lines))
    nick = _nicknames(rng, n)
    phone = np.array([f"10{d}{x:08d}" for d, x in zip(rng.integers(0, 10, n), rng.integers(0, 10**8, n))])
    status_cn = {"paid": "交易成功", "unpaid": "等待买家付款", "refunded": "退款成功", "cancelled": "交易关闭"}
    out = pd.DataFrame({
        "customer_id": ids[cust_i],
        "order_id": lines["order_id"].to_numpy(),
        "order_time": lines["order_time"].dt.strftime("%Y-%m-%d %H:%M:%S").to_numpy(),
        "amount": line_cents / 100.0,
        "status": lines["status"].to_numpy(),
        "channel": np.array(CHANNELS)[channel[cust_i]],
        "region": np.array(REGIONS)[region[cust_i]],
        "product": prod,
        "category": np.array(cat_names)[ccat],
        "quantity": qty,
        "nickname": nick[cust_i],
        "phone": phone[cust_i],
    })
    # a quarter of the statuses in the export's Chinese wording, as real exports mix them
    cn = rng.uniform(size=len(out)) < 0.25
    out.loc[cn, "status"] = out.loc[cn, "status"].map(status_cn)

    segs = {a: sms_segments(COPY[a[0]].format(nickname="王晓月呀")) for a in spec.arms}
    copy_txt = np.array([COPY[arm_names[a][0]].format(nickname=nick[c]) if a < len(spec.arms) else ""
                         for a, c in zip(arm, targeted)], dtype=object)
    seg = np.array([sms_segments(t) if t else 0 for t in copy_txt])
    sends = pd.DataFrame({
        "customer_id": ids[targeted],
        "campaign_id": spec.campaign_id,
        "variant": np.array(arm_names)[arm],
        "send_time": send_time.strftime("%Y-%m-%d %H:%M:%S"),
        "delivered": np.where(delivered, "true", "false"),
        "segments": seg,
        "cost": np.round(seg * np.where(is_hold, 0.0, spec.price_per_message), 2),
        "copy": copy_txt,
        "phone": phone[targeted],
    })

    # truth
    obs_end = end
    all_paid = pd.concat([paid, camp_orders])
    n_all = all_paid.groupby("cust").size().reindex(range(n), fill_value=0)
    last_all = all_paid.groupby("cust")["order_time"].max().reindex(range(n))
    # whole calendar days from the last paid order's date to the observation end's date
    since = (np.datetime64(obs_end, "D") - last_all.to_numpy().astype("datetime64[D]")) / np.timedelta64(1, "D")
    stage = np.where(n_all.to_numpy() == 0, "potential",
             np.where(since > 360, "lost", np.where(since > 90, "dormant",
             np.where(n_all.to_numpy() >= 2, "returning", "new"))))
    counts = pd.Series(stage).value_counts().to_dict()
    arms_truth = {}
    for j, a in enumerate(arm_names):
        ex = np.minimum(np.append(spec.extra_conversion, 0.0)[j] * weight, 1.0) * (
            spec.delivery_rate if a != "holdout" else 0)
        arms_truth[a] = {"planned_share": arm_p[j], "extra_conversion_if_delivered": float(np.append(spec.extra_conversion, 0.0)[j]),
                         "conversion_rate": float(np.mean(nat + (1 - nat) * ex)),
                         "segments": int(segs.get(a, 0)), "targeted": int((arm == j).sum())}
    ten = [a for a in spec.arms if "10:00" in a]
    seventeen = [a for a in spec.arms if "17:00" in a]
    truth = {
        "spec": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(spec).items()},
        "observation_end": str(obs_end),
        "customers": n,
        "buyers": int(nb),
        "potential_customers": int(n_pot),
        "magic_number": spec.magic_number,
        "repurchase_window_days": spec.window_days,
        "repurchase_rate_by_k": {str(k): float(spec.rate(k)) for k in range(1, 11)},
        "repurchase_note": ("P(order k+1 within window_days of order k) among customers whose k-th order is at "
                            "least window_days before the observation end: the population's curve, an association "
                            "(see propensity); campaign orders add about +0.001 to k-th orders placed in the 90 "
                            "days before the campaign"),
        "propensity": _propensity_truth(spec, own, z[buyers]),
        "spend": {"p": spec.spend_p, "q": spec.spend_q, "v": spec.spend_v},
        "dropout_beta": {"a": spec.dropout_a, "b": spec.dropout_b},
        "alive_at_observation_end": int(np.sum(~is_pot & (np.isnat(death) | (death > np.datetime64(obs_end))))),
        "lifecycle_counts_ladder": {k: int(v) for k, v in sorted(counts.items())},
        "paid_orders": int(len(all_paid)),
        "chain_orders": int(len(paid)),
        "promotions": _promotion_truth(allo, spec, pulls),
        "campaign": {
            "campaign_id": spec.campaign_id, "date": spec.campaign_date,
            "attribution_hours": spec.attribution_hours, "targeted": int(len(targeted)),
            "delivery_rate": spec.delivery_rate, "price_per_message": spec.price_per_message,
            "natural_rate": natural_rate, "arms": arms_truth,
            "effect_17_vs_10": float(np.mean([arms_truth[a]["conversion_rate"] for a in seventeen])
                                     - np.mean([arms_truth[a]["conversion_rate"] for a in ten])),
            "effect_copy_B_vs_A": 0.0,
            "winner_time": "17:00",
            "decision": {"arm": "A@17:00", "copy": "A", "send_time": "17:00",
                         "why": "copy has no effect and B bills two messages: the cheaper copy A at 17:00"},
            "holdout_clock": "virtual send time split at random between the tested times",
            "response_weight": "(0.05 + paid orders in the 90 days before)^2, mean 1 over the targeted",
        },
    }
    customers = pd.DataFrame({
        "customer_id": ids,
        "death_time": pd.Series(death).dt.strftime("%Y-%m-%d %H:%M:%S").fillna("").to_numpy(),
        "paid_orders": n_all.to_numpy(),
    })
    return out, sends, truth, customers


def _propensity_truth(spec: StoreSpec, own: dict, z: np.ndarray) -> dict:
    """The planted heterogeneity: a_k, a typical customer's own rate, every buyer's mean rate at k."""
    sd = spec.propensity_sd
    if sd <= 0:
        return {"sd_logit": 0.0, "model": "none: every customer has the planted rate at each k"}
    ks = sorted(own)
    return {
        "sd_logit": sd,
        "model": "P(repurchase within the window | k orders, z) = expit(a_k + sd_logit * z), z ~ N(0, 1) per customer",
        "calibration": "a_k solved so that the mean over customers whose k-th order is at least window_days "
                       "before the observation end equals repurchase_rate_by_k",
        "intercept_by_k": {str(k): round(own[k], 6) for k in ks},
        "typical_customer_rate_by_k": {str(k): round(float(_expit(own[k])), 6) for k in ks},
        "all_buyers_rate_by_k": {str(k): round(float(_expit(own[k] + sd * z).mean()), 6) for k in ks},
        "note": "the curve's rise is partly selection: had every buyer reached k orders, their mean rate at k "
                "would be all_buyers_rate_by_k, not repurchase_rate_by_k",
    }


def _nicknames(rng: np.random.Generator, n: int) -> np.ndarray:
    s = rng.integers(0, len(SURNAMES), n)
    g1 = rng.integers(0, len(GIVEN), n)
    g2 = rng.integers(0, len(GIVEN), n)
    suf = rng.integers(0, len(SUFFIX), n)
    return np.array([SURNAMES[a] + GIVEN[b] + GIVEN[c] + SUFFIX[d] for a, b, c, d in zip(s, g1, g2, suf)])


def write_sample(out_dir: str, n_customers: int = 20_000, seed: int = 0, **spec_kw) -> dict:
    """Write ``orders.csv``, ``sends.csv``, ``truth.json`` and ``truth_customers.csv``.

    Same arguments give byte-identical files.
    """
    spec = StoreSpec(n_customers=n_customers, seed=seed, **spec_kw)
    orders, sends, truth, customers = simulate_store(spec)
    os.makedirs(out_dir, exist_ok=True)
    orders.to_csv(os.path.join(out_dir, "orders.csv"), index=False, float_format="%.2f", lineterminator="\n")
    sends.to_csv(os.path.join(out_dir, "sends.csv"), index=False, float_format="%.2f", lineterminator="\n")
    customers.to_csv(os.path.join(out_dir, "truth_customers.csv"), index=False, lineterminator="\n")
    with open(os.path.join(out_dir, "truth.json"), "w", encoding="utf-8") as f:
        json.dump(truth, f, ensure_ascii=False, indent=2, sort_keys=True)
        f.write("\n")
    return truth


# ----------------------------------------------------------------------------- BG/NBD by construction

def simulate_bgnbd(n_customers: int = 2000, seed: int = 0, r: float = 0.243, alpha: float = 4.414, a: float = 0.793,
                   b: float = 2.426, p: float = 6.25, q: float = 3.74, v: float = 15.45, cohort_weeks: float = 12.0,
                   calibration_weeks: float = 39.0, holdout_weeks: float = 39.0, start: str = "2024-01-01") -> dict:
    """A store that is BG/NBD with Gamma-Gamma spend by construction (for interval coverage tests).

    Separate from :func:`simulate_store`. The time unit is the week; defaults are the CDNOW
    estimates (Fader, Hardie & Lee 2005; lifetimes' Gamma-Gamma example). Customer i first
    buys at a uniform time in [0, ``cohort_weeks``); buys again at rate λ_i ~ Gamma(r, rate
    α); after each repeat purchase drops out with probability p_i ~ Beta(a, b); each
    purchase's amount ~ Gamma(p, rate ν_i), ν_i ~ Gamma(q, rate v) (lifetimes'
    parametrisation). Calibration ends at ``calibration_weeks``, the holdout runs
    ``holdout_weeks`` after it.

    Returns
    -------
    dict with ``orders`` (``customer_id, order_id, order_time, amount, status``; week 0 is
    ``start``), ``summary`` (per customer, exact weeks, the columns of lifetimes'
    ``calibration_and_holdout_data``: ``frequency_cal``, ``recency_cal``, ``T_cal``,
    ``monetary_value_cal`` (mean repeat purchase amount), ``frequency_holdout``,
    ``duration_holdout``), ``customers`` (planted ``lam``, ``p``, ``nu``,
    ``alive_at_calibration_end``) and ``truth`` (the planted parameters).
    """
    rng = np.random.default_rng(seed)
    n = n_customers
    t0 = rng.uniform(0.0, cohort_weeks, n)
    lam = rng.gamma(r, 1.0 / alpha, n)
    pdrop = rng.beta(a, b, n)
    nu = rng.gamma(q, 1.0 / v, n)
    end = calibration_weeks + holdout_weeks
    who, when, death = [np.arange(n)], [t0], np.full(n, np.inf)
    cur_i, cur_t = np.arange(n), t0
    with np.errstate(divide="ignore"):
        while len(cur_i):
            nxt = cur_t + rng.exponential(1.0, len(cur_i)) / lam[cur_i]
            keep = nxt <= end
            cur_i, cur_t = cur_i[keep], nxt[keep]
            who.append(cur_i)
            when.append(cur_t)
            dies = rng.random(len(cur_i)) < pdrop[cur_i]
            death[cur_i[dies]] = cur_t[dies]
            cur_i, cur_t = cur_i[~dies], cur_t[~dies]
    ev = pd.DataFrame({"cust": np.concatenate(who), "t": np.concatenate(when)}).sort_values(["cust", "t"])
    ev["amount"] = rng.gamma(p, 1.0 / nu[ev["cust"].to_numpy()])
    ev["repeat"] = ev["cust"].duplicated()
    cal = ev[ev["t"] <= calibration_weeks]
    g = cal.groupby("cust")
    x = g.size().to_numpy() - 1.0
    rep_mean = cal[cal["repeat"]].groupby("cust")["amount"].mean().reindex(np.arange(n), fill_value=0.0)
    hold = ev[ev["t"] > calibration_weeks].groupby("cust").size().reindex(np.arange(n), fill_value=0).to_numpy()
    ids = np.array([f"B{i:06d}" for i in range(n)])
    summary = pd.DataFrame({"frequency_cal": x, "recency_cal": g["t"].max().to_numpy() - t0,
                            "T_cal": calibration_weeks - t0, "monetary_value_cal": rep_mean.to_numpy(),
                            "frequency_holdout": hold.astype(float), "duration_holdout": float(holdout_weeks)},
                           index=pd.Index(ids, name="customer_id"))
    summary.attrs.update(time_unit="W")
    t_start = pd.Timestamp(start)
    orders = pd.DataFrame({"customer_id": ids[ev["cust"].to_numpy()], "order_id": [f"b{i}" for i in range(len(ev))],
                           "order_time": (t_start + pd.to_timedelta(ev["t"].to_numpy() * 7, unit="D")).floor("s"),
                           "amount": ev["amount"].round(2).to_numpy(), "status": "paid"})
    customers = pd.DataFrame({"lam": lam, "p": pdrop, "nu": nu, "alive_at_calibration_end": death > calibration_weeks},
                             index=summary.index)
    truth = {"r": r, "alpha": alpha, "a": a, "b": b, "p": p, "q": q, "v": v, "unit": "week",
             "calibration_weeks": calibration_weeks, "holdout_weeks": holdout_weeks, "start": start}
    return {"orders": orders, "summary": summary, "customers": customers, "truth": truth}


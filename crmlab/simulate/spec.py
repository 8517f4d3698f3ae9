"""The simulated store's planted parameters (:class:`StoreSpec`) and its fixed vocabulary:
channels, regions, categories and products, nicknames, and the campaign's two SMS copies."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["StoreSpec", "CHANNELS", "CHANNEL_P", "REGIONS", "REGION_P", "CATEGORIES", "CATEGORY_P", "SURNAMES",
           "GIVEN", "SUFFIX", "STORE", "COPY", "STATUS_CN"]

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
CATEGORY_P = (0.35, 0.25, 0.2, 0.2)
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


#: the export's Chinese wording of each status (a quarter of the rows use it)
STATUS_CN = {"paid": "交易成功", "unpaid": "等待买家付款", "refunded": "退款成功", "cancelled": "交易关闭"}


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
    # issue 24 (all off by default: the sample stays as it was)
    returns: float = 0.0              # share of paid orders reversed by a separate credit note (C-prefixed id)
    return_partial_share: float = 0.3  # of those, the share partly returned (one line, part of its amount)
    return_unmatched_share: float = 0.05  # extra credits matching no purchase, per reversed order
    truncate_before: str | None = None  # cut the export here: orders and sends before it are dropped

    def __post_init__(self) -> None:
        if not 0 <= self.returns < 1:
            raise ValueError(f"returns must be a share in [0, 1), got {self.returns!r}")
        if self.truncate_before is not None:
            cut = pd.Timestamp(self.truncate_before)
            if not pd.Timestamp(self.start) < cut <= pd.Timestamp(self.end):
                raise ValueError(f"truncate_before {self.truncate_before} must be after the simulation's start "
                                 f"{self.start} and not after its end {self.end} (the store is simulated from "
                                 "start and its export cut there)")

    def rate(self, k: np.ndarray | int) -> np.ndarray:
        """Planted P(order k+1 within the window | k orders)."""
        idx = np.minimum(np.asarray(k), len(self.repurchase_rate)) - 1
        return np.asarray(self.repurchase_rate)[idx]

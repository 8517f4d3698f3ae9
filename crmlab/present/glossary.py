"""The words of the reports: bilingual column labels (:data:`LABELS`) and the one glossary
of customer stages (:data:`GLOSSARY`), the same in every report and card."""
from __future__ import annotations

import re
from typing import Iterable

import pandas as pd

__all__ = ["LABELS", "GLOSSARY", "label", "stage_name", "glossary_table"]

# --------------------------------------------------------------------------- labels

#: column names as words, English and Chinese (the reports' tables use these headers)
LABELS: dict[str, str] = {
    # people and orders
    "customer_id": "Customer 客户", "customers": "Customers 客户数", "buyers": "Buyers 买家数",
    "orders": "Orders 订单数", "paid_orders": "Paid orders 付款订单", "sales": "Sales 销售额",
    "amount": "Amount 金额", "aov": "Avg order 客单价", "units": "Units 件数",
    "new_buyers": "First-time buyers 首购买家", "returning_buyers": "Returning buyers 老客买家",
    "new_sales": "First-time sales 首购销售额", "returning_sales": "Returning sales 老客销售额",
    "returning_buyer_share": "Returning buyers % 老客买家占比", "returning_sales_share": "Returning sales % 老客销售占比",
    "order_share": "Share of orders 订单占比", "sales_share": "Share of sales 销售占比",
    "customer_share": "Share of customers 客户占比", "share": "Share 占比", "count": "Count 数量",
    "example rows": "Example rows 示例行", "month": "Month 月份", "status": "Status 状态",
    "region": "Region 地区", "channel": "Channel 渠道", "segment": "Segment 分群", "rfm": "RFM segment RFM 分群", "past_value": "Before going quiet 过往价值",
    "stage": "Stage 阶段", "stage_cn": "阶段", "名称": "Stage 阶段", "ladder_step": "Ladder step 阶梯",
    "days_since_last": "Days since last order 距上次购买天数", "last_time": "Last order 最近购买",
    "dormancy_threshold": "Dormant after (days) 休眠阈值", "sales_per_customer": "Sales per customer 人均销售额",
    "orders_per_buyer": "Orders per buyer 人均订单", "units_per_buyer": "Units per buyer 人均件数",
    "R": "R", "F": "F", "M": "M", "reason": "Why on the list 入选原因",
    # rates and intervals
    "rate": "Rate 比率", "base": "Base 基数", "ci_low": "95% low 下限", "ci_high": "95% high 上限",
    "k": "Orders so far 已购次数", "at_risk": "At risk 可观察人数", "repurchased": "Came back 复购人数",
    "naive_rate": "Naive rate 朴素比率", "km_rate": "Kaplan–Meier rate", "enough": "Judged 参与判断",
    "eligible": "Observable 可观察", "retained": "Retained 留存",
    "pooled_rate": "Pooled rate 合并比率", "diff_vs_pooled": "Difference vs pooled 与合并比率之差",
    "deviance": "Poisson deviance per customer", "within_model_low": "Model's own low",
    "within_model_high": "Model's own high", "model_error_sd_log": "Model error (log sd)", "backtests": "Backtests",
    "p_no_purchase": "P(no purchase) 不购买概率", "value_median": "Value median 价值中位数",
    "value_p90": "Value 90th pct 价值P90", "rhythm_ratio": "Silence / own gap 沉默倍数",
    "difference_between_rates": "Difference between rates 两比率之差",
    "within_tolerance": "Within tolerance 等效", "needed_at_risk": "Needed at risk 所需人数",
    "magic_number": "Magic number 魔法数字", "window_days": "Window (days) 窗口天数",
    "why_none": "Why no magic number 原因",
    # CLV
    "p_alive": "P(alive) 存活概率", "clv": "CLV 终身价值", "clv_low": "CLV low 下限", "clv_high": "CLV high 上限",
    "frequency": "Repeat purchases 复购次数", "recency": "Recency 最近", "T": "Age 客龄",
    "monetary_value": "Avg repeat order 平均复购金额", "expected_spend": "Expected spend 预期客单",
    "expected_purchases": "Expected purchases 预期购买", "total_clv": "Total CLV 总价值",
    "mean_clv": "Mean CLV 平均价值", "decile": "Decile 十分位", "arm": "Arm 组", "clock": "Clock 时钟", "share_of_value": "Share of value 价值占比", "customers_in_decile": "Customers 客户数",
    "predicted_total": "Predicted 预测", "predicted_low": "Predicted low 预测下限",
    "predicted_high": "Predicted high 预测上限", "actual_total": "Actual 实际", "total_error": "Total error 总误差",
    "mae": "MAE per customer", "observed": "Observed 实际", "expected": "Expected 预期",
    "estimate": "Estimate 估计", "se": "Std. error 标准误", "low": "95% low 下限", "high": "95% high 上限",
    # experiments
    "targeted": "Targeted 目标客户数", "delivered": "Delivered 发送成功数", "segments": "Billed 计费条数",
    "conversion_rate": "Conversion 转化率", "conversion": "Conversion 转化率", "revenue": "Revenue 活动销售额",
    "cost": "Cost 投入成本", "roi": "ROI 投入产出比", "revenue_per_targeted": "Revenue / targeted",
    "ordered": "Ordered 拍下", "unpaid": "Unpaid 未付款", "control_rate": "Control rate 对照转化",
    "control_targeted": "Control targeted 对照人数", "diff": "Difference 差异", "newcomb_low": "95% low 下限",
    "newcomb_high": "95% high 上限", "z": "z", "p_value": "p-value", "p_holm": "p (Holm)",
    "relative_lift": "Relative lift 相对提升", "messaged_rate": "Messaged rate 触达组转化",
    "welch_t": "Welch t", "df": "df", "boot_low": "Bootstrap low", "boot_high": "Bootstrap high",
    "odds_ratio": "Odds ratio 比值比", "or_ci_low": "OR low", "or_ci_high": "OR high",
    "diff_ci_low": "95% low 下限", "diff_ci_high": "95% high 上限", "theta": "θ",
    "variance_reduction": "Variance reduction 方差缩减", "raw_ci_low": "Raw low", "raw_ci_high": "Raw high",
    "cs_low": "Always-valid low", "cs_high": "Always-valid high", "day": "Day 天",
    "incremental_conversion": "Incremental conversion 增量转化", "incremental_revenue": "Incremental revenue 增量收入",
    "incremental_profit": "Incremental profit 增量利润", "messages": "Messages 营销次数",
    "responses": "Responses 响应次数", "response_rate": "Response rate 响应率",
    # ledger, provenance
    "input rows": "Input rows 输入行", "used rows": "Used rows 使用行", "observation end": "Observation end 观察截止",
    "sha256": "sha256", "input": "Input 输入文件", "value": "Value 值", "parameter": "Parameter 参数",
    "rows": "Rows 行",
}


def label(name) -> str:
    """The words for a column name: :data:`LABELS`, else ``snake_case`` as ``Snake case``."""
    if not isinstance(name, str):
        return str(name)
    if name in LABELS:
        return LABELS[name]
    if re.fullmatch(r"[a-z0-9_]+", name) and "_" in name:
        words = name.replace("_", " ")
        return words[0].upper() + words[1:]
    return name


# --------------------------------------------------------------------------- glossary

#: one meaning per stage name in every report (01 monthly buyers, 02 lifecycle, 04 CLV, 05 segments)
GLOSSARY: dict[str, tuple[str, str, str]] = {
    # key: (Chinese, English, definition)
    "potential": ("潜客", "potential", "no paid order yet (only unpaid, refunded or cancelled ones)"),
    "first-time": ("首购客", "first-time buyer", "a buyer whose first paid order ever falls in the period shown "
                                                 "(01's monthly 'new' bars)"),
    "returning buyer": ("老客", "returning buyer", "a buyer of the period who had a paid order before it"),
    "new": ("新客", "new", "exactly one paid order so far, and not dormant"),
    "returning": ("复购客", "returning", "two or more paid orders, not dormant"),
    "fan": ("粉丝", "fan", "returning, in the store's top fifth by orders and by spend, bought recently"),
    "dormant": ("休眠", "dormant", "no paid order for longer than the dormancy threshold (90 days by default), "
                                  "but not lost"),
    "lost": ("流失", "lost", "no paid order for more than 360 days"),
    "wake-up": ("唤醒", "wake-up list", "dormant customers in the top 40% of buyers by spend (RFM spend score M "
                                       "4 or 5): the same customers in 02 and 04; 04 adds each one's P(alive) "
                                       "and CLV and ranks them by CLV; each row's reason says why it is listed"),
}


def stage_name(key: str, lang: str = "both") -> str:
    """``"dormant"`` -> ``"休眠 dormant"`` (``lang="cn"`` / ``"en"`` for one language)."""
    cn, en, _ = GLOSSARY.get(key, (key, key, ""))
    return {"cn": cn, "en": en}.get(lang, f"{cn} {en}")


def glossary_table(keys: Iterable[str] | None = None):
    """The glossary as a small DataFrame (term, definition)."""
    keys = list(GLOSSARY) if keys is None else list(keys)
    return pd.DataFrame({"Term 术语": [stage_name(k) for k in keys],
                         "Meaning 含义": [GLOSSARY[k][2] for k in keys]})

"""What crmlab reads and the one error it raises for bad input.

The columns of an order export and of an SMS send log (their canonical names and the
headers recognised without a mapping), the order statuses, and :class:`CrmlabInputError`
(the CLI prints it on one line and exits 2).
"""
from __future__ import annotations

__all__ = ["CrmlabInputError", "ORDER_ALIASES", "SEND_ALIASES", "STATUS_MAP", "STATUSES", "PII_COLUMNS",
           "PAYMENT_ALIASES", "REMINDER_SEND_ALIASES"]


class CrmlabInputError(ValueError):
    """A fatal problem with an input: the CLI prints it on one line and exits 2."""


#: personal columns, dropped from loaded tables unless ``keep_pii=True``
PII_COLUMNS = ("nickname", "phone")


#: Header names recognised without a mapping (besides the canonical English names).
#: Taobao/Tmall seller-centre exports and common Chinese headers.
ORDER_ALIASES: dict[str, tuple[str, ...]] = {
    "customer_id": ("买家会员名", "买家ID", "客户ID", "会员ID", "用户ID", "customer"),
    "order_id": ("订单编号", "订单号", "订单ID", "主订单编号"),
    "order_time": ("订单付款时间", "付款时间", "下单时间", "订单创建时间", "order_date"),
    "amount": ("买家实际支付金额", "实付金额", "支付金额", "订单金额", "金额"),
    "status": ("订单状态", "交易状态", "状态"),
    "channel": ("渠道", "来源渠道", "订单来源"),
    "region": ("地区", "省份", "收货省份"),
    "product": ("宝贝标题", "商品名称", "商品"),
    "category": ("宝贝种类", "类目", "品类"),
    "quantity": ("购买数量", "宝贝总数量", "数量"),
    "unit_price": ("单价", "宝贝单价"),
    "nickname": ("昵称", "买家昵称", "收货人姓名"),
    "phone": ("联系手机", "手机号", "手机"),
}
SEND_ALIASES: dict[str, tuple[str, ...]] = {
    "customer_id": ("买家会员名", "客户ID", "会员ID", "用户ID"),
    "campaign_id": ("活动ID", "活动编号", "活动名称"),
    "variant": ("分组", "版本", "arm"),
    "send_time": ("发送时间",),
    "delivered": ("发送成功", "是否成功", "发送状态"),
    "cost": ("费用", "成本"),
    "segments": ("计费条数",),
    "copy": ("短信内容", "文案"),
    "opt_out": ("退订", "是否退订", "unsubscribed"),
    "phone": ("手机号", "手机", "联系手机"),
}

#: Order status values (lower-cased English, or the Chinese export wording) -> crmlab status.
STATUS_MAP: dict[str, str] = {
    "paid": "paid", "已付款": "paid", "交易成功": "paid", "买家已付款": "paid",
    "卖家已发货": "paid", "等待卖家发货": "paid", "等待买家确认收货": "paid", "已完成": "paid",
    "unpaid": "unpaid", "等待付款": "unpaid", "未付款": "unpaid", "等待买家付款": "unpaid",
    "refunded": "refunded", "退款": "refunded", "退款成功": "refunded", "已退款": "refunded",
    "cancelled": "cancelled", "canceled": "cancelled", "交易关闭": "cancelled", "已取消": "cancelled",
}
STATUSES = ("paid", "unpaid", "refunded", "cancelled")

#: Issue 28 (payment reminders, 催付): the columns :mod:`crmlab.ingest.payments` reads from an
#: order export, with the headers recognised for them. Separate from :data:`ORDER_ALIASES`,
#: where 订单创建时间 / 订单付款时间 stay aliases of ``order_time`` for every other command.
PAYMENT_ALIASES: dict[str, tuple[str, ...]] = {
    "customer_id": ORDER_ALIASES["customer_id"],
    "order_id": ORDER_ALIASES["order_id"],
    "created_time": ("订单创建时间", "下单时间", "创建时间", "拍下时间", "created_at", "create_time"),
    "paid_time": ("订单付款时间", "付款时间", "支付时间", "paid_at", "pay_time"),
    "closed_time": ("订单关闭时间", "交易关闭时间", "关闭时间", "closed_at"),
    "amount": ORDER_ALIASES["amount"],
    "status": ORDER_ALIASES["status"],
}
#: The send log's columns for reminders: :data:`SEND_ALIASES` plus the order a reminder is about.
REMINDER_SEND_ALIASES: dict[str, tuple[str, ...]] = {
    **SEND_ALIASES,
    "order_id": ("订单编号", "订单号", "订单ID", "主订单编号"),
}

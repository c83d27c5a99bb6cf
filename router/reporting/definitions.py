"""What each figure of the report means, in the words the reports page shows (en, zh)."""

from __future__ import annotations

__all__ = ["DEFINITIONS"]

DEFINITIONS: dict[str, dict[str, str]] = {
    "conversations": {
        "en": "Conversations opened in the period (by their first message).",
        "zh": "本期开始的会话数（以第一条消息的时间为准）。",
    },
    "messages": {
        "en": "Customer messages in those conversations, by channel.",
        "zh": "这些会话中客户发来的消息数，按渠道统计。",
    },
    "heatmap": {
        "en": "Customer messages by day of week and hour, in the desk's time zone.",
        "zh": "客户消息按星期和小时分布（客服所在时区）。",
    },
    "contacts": {
        "en": "New: the contact's first conversation ever is in the period. Returning: "
        "they had one before.",
        "zh": "新客户：第一次会话就在本期；老客户：之前就有过会话。",
    },
    "bot_confirmed": {
        "en": "Never handed to a person, and the customer thanked the bot after an answer.",
        "zh": "未转人工，且客户在机器人回答后表示了感谢。",
    },
    "bot_assumed": {
        "en": "Never handed to a person, the bot answered, and the customer did not write "
        "again (on any channel) within the return window. Not confirmed: reported apart.",
        "zh": "未转人工、机器人作答，且客户在回访窗口内没有再来（任何渠道）。未经确认，单独统计。",
    },
    "bot_pending": {
        "en": "Bot-only conversations too recent to know whether the customer comes back.",
        "zh": "仅机器人处理、时间太近还无法判断客户是否会再来的会话。",
    },
    "bot_unanswered": {
        "en": "Bot-only conversations where the bot never answered (greetings, the customer "
        "left during a clarification).",
        "zh": "仅机器人处理但机器人从未作答的会话（只有问候，或在澄清时客户离开）。",
    },
    "handoffs": {
        "en": "Conversations handed to people, by the reason of their first handoff.",
        "zh": "转人工的会话，按首次转人工的原因统计。",
    },
    "clarifications": {
        "en": "Clarifying questions the bot asked, and which choice customers took.",
        "zh": "机器人提出的澄清问题数，以及客户选择了哪个选项。",
    },
    "reopened": {
        "en": "Conversations reopened in the period: by an agent, by the customer writing "
        "again soon after the resolution, or by a reply to a follow-up.",
        "zh": "本期被重新打开的会话：客服重开、客户在解决后不久再次来信，或客户回复回访。",
    },
    "response_times": {
        "en": "First response, next response and resolution times (p50, p90) in business "
        "hours of each conversation's SLA policy; resolution includes time waiting on "
        "the customer.",
        "zh": "首次响应、后续响应和解决用时（p50、p90），按各会话时限规则的工作时间计算；"
        "解决用时包含等待客户的时间。",
    },
    "sla": {
        "en": "Promises met / (met + missed), per policy, metric and agent.",
        "zh": "时限达成率 = 达成 /（达成 + 超时），按规则、指标和客服统计。",
    },
    "backlog": {
        "en": "Conversations with people (handed off, not resolved) at the end of each day.",
        "zh": "每天结束时仍在人工处理中（已转人工、未解决）的会话数。",
    },
    "satisfaction": {
        "en": "Ratings 1-5 after a person's service: average, distribution, response rate "
        "(rated / asked), comments.",
        "zh": "人工服务后的 1-5 分评价：平均分、分布、回复率（已评 / 已邀请）及意见。",
    },
}

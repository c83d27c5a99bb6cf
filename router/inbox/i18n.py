"""The inbox's words in English and Chinese."""

from __future__ import annotations

__all__ = ["LANGUAGES", "pick_language", "texts"]

LANGUAGES = ("en", "zh")

_EN = {
    "title": "RelayDesk inbox",
    "login": "Sign in",
    "name": "Name",
    "password": "Password",
    "wrong_login": "Wrong name or password.",
    "too_many": "Too many failed attempts. Try again in a few minutes.",
    "logout": "Sign out",
    "unassigned": "Unassigned",
    "mine": "Mine",
    "open": "All open",
    "resolved": "Resolved",
    "bot": "With the bot",
    "search": "Search messages and contacts",
    "filter": "Filter",
    "any_channel": "any channel",
    "any_language": "any language",
    "any_agent": "any agent",
    "tag": "tag",
    "channel": "Channel",
    "customer": "Customer",
    "message": "Customer wrote",
    "language": "Language",
    "waiting": "Waiting",
    "due": "Due",
    "agent": "Agent",
    "nothing": "Nothing here.",
    "awaiting": "awaiting a reply",
    "claim": "Claim",
    "reply": "Send reply",
    "note": "Add note",
    "note_placeholder": "Internal note — never sent to the customer",
    "reply_placeholder": "Reply to the customer through their channel",
    "resolve": "Resolve",
    "reopen": "Reopen",
    "assign": "Assign",
    "to_queue": "back to the queue",
    "tags": "Tags",
    "priority": "Priority",
    "save": "Save",
    "handoff": "Why a person",
    "candidates": "The bot considered",
    "contact": "Contact",
    "identities": "Identities",
    "earlier": "Earlier conversations",
    "canned": "Insert an answer from the knowledge base",
    "save_faq": "Save as FAQ",
    "faq_saved": "Saved to the knowledge base: the bot answers this from now on.",
    "stale": "Not sent: since you opened this conversation there is something new "
    "(shown above). Your draft is kept.",
    "not_yours": "Not sent: this conversation belongs to someone else now.",
    "claimed_by": "claimed by",
    "viewing": "is viewing",
    "typing": "is typing",
    "note_label": "Note",
    "agents": "Agents",
    "admin": "Admin",
    "add_agent": "Add agent",
    "role": "Role",
    "disable": "Disable",
    "enable": "Enable",
    "reset_password": "Set password",
    "active": "active",
    "disabled": "disabled",
    "new_conversation": "New conversation",
    "status": "Status",
    "attachments": "Attachments",
    "failed": "not delivered",
    "joined": "joined because",
    "split": "Split off",
}

_ZH = {
    "title": "RelayDesk 客服工作台",
    "login": "登录",
    "name": "用户名",
    "password": "密码",
    "wrong_login": "用户名或密码错误。",
    "too_many": "失败次数过多，请几分钟后再试。",
    "logout": "退出",
    "unassigned": "未分配",
    "mine": "我的",
    "open": "全部进行中",
    "resolved": "已解决",
    "bot": "机器人接待中",
    "search": "搜索消息和联系人",
    "filter": "筛选",
    "any_channel": "全部渠道",
    "any_language": "全部语言",
    "any_agent": "全部客服",
    "tag": "标签",
    "channel": "渠道",
    "customer": "客户",
    "message": "客户留言",
    "language": "语言",
    "waiting": "等待",
    "due": "期限",
    "agent": "客服",
    "nothing": "暂无会话。",
    "awaiting": "等待回复",
    "claim": "认领",
    "reply": "发送回复",
    "note": "添加备注",
    "note_placeholder": "内部备注——不会发送给客户",
    "reply_placeholder": "通过客户所在渠道回复",
    "resolve": "解决",
    "reopen": "重新打开",
    "assign": "分配",
    "to_queue": "放回队列",
    "tags": "标签",
    "priority": "优先级",
    "save": "保存",
    "handoff": "转人工原因",
    "candidates": "机器人考虑过的答案",
    "contact": "联系人",
    "identities": "身份",
    "earlier": "历史会话",
    "canned": "从知识库插入答案",
    "save_faq": "存为常见问题",
    "faq_saved": "已存入知识库：机器人今后会自动回答这个问题。",
    "stale": "未发送：打开会话后有新的动态（见上方）。草稿已保留。",
    "not_yours": "未发送：该会话现在属于其他客服。",
    "claimed_by": "认领人",
    "viewing": "正在查看",
    "typing": "正在输入",
    "note_label": "备注",
    "agents": "客服账号",
    "admin": "管理",
    "add_agent": "添加客服",
    "role": "角色",
    "disable": "停用",
    "enable": "启用",
    "reset_password": "设置密码",
    "active": "启用中",
    "disabled": "已停用",
    "new_conversation": "新会话",
    "status": "状态",
    "attachments": "附件",
    "failed": "未送达",
    "joined": "归入原因",
    "split": "拆分为新会话",
}

_TEXTS = {"en": _EN, "zh": _ZH}


def texts(language: str) -> dict[str, str]:
    return _TEXTS.get(language, _EN)


def pick_language(stored: str | None, accept_language: str) -> str:
    """The agent's choice, else the browser's preference, else English."""
    if stored in LANGUAGES:
        return stored
    for part in accept_language.split(","):
        code = part.split(";")[0].strip().lower()
        if code.startswith("zh"):
            return "zh"
        if code.startswith("en"):
            return "en"
    return "en"

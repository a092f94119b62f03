"""Where a caption may break: atomic units, break costs, and the best layout of a cue's text into lines.

English follows the Netflix/BBC rules: break after punctuation and before conjunctions and prepositions; never
split article+noun, adjective+noun, first+last name, pronoun+verb, verb+auxiliary/negation. Chinese never
breaks inside a word (jieba decides what a word is, even when the recogniser gives one character at a time),
breaks after punctuation and before conjunctions/prepositions, keeps particles with the word before them, and
shows no commas or full stops inside a line (a space instead; none at a line's end). Chinese costs also use
jieba's part-of-speech tags (posseg dictionary): adjective/noun/measure word + noun, adverb + verb and verb +
complement stay together; subject | predicate and verb | classifier-led object are good points; conjunctions
are found by tag as well.

A *unit* is the smallest piece a break may not enter: one English word, or the recogniser words that make up
one Chinese word. Costs are small for preferred points (0 after a full stop, 1 after a comma, 2-3 before a
conjunction/preposition), ``NEUTRAL`` elsewhere and ``POOR`` or more where a rule says never.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from .presets import CaptionPreset, language_family

NEUTRAL = 15  # an ordinary word boundary; syntax outranks balance (Netflix), so well above preferred points
POOR = 30  # a break at or above this cost breaks a rule ("never split ...")
MID_LINE_SENTENCE = 15  # a sentence ending inside a line (the next one should start a line)
MID_LINE_CLAUSE = 4  # a clause ending inside a line when the line break could have gone there

SENTENCE_END = set(".?!…。？！")
CLAUSE_END = set(",;:，；：、—–")
_CLOSERS = "\"'”’»」』）)]】"
_OPENERS = "\"'“‘«「『（(【["

# --- English word classes (lower case) ---------------------------------------------------------------------
DETERMINERS = set(
    "a an the this that these those my your his her its our their some any every each no another "
    "such whose either neither much many few several all both".split()
)
SUBJECT_PRONOUNS = set("i you he she it we they who".split())
OBJECT_PRONOUNS = set(
    "me him her us them it myself yourself himself herself itself ourselves themselves".split()
)
AUXILIARIES = set(
    "am is are was were be been being have has had do does did will would shall should can could "
    "may might must i'm you're he's she's it's we're they're i've you've we've they've i'll you'll "
    "he'll she'll we'll they'll i'd you'd he'd she'd we'd they'd that's there's gonna wanna "
    "gotta".split()
)
# negative contractions are auxiliaries too: "don't | remember" splits verb + negation
AUXILIARIES |= set(
    "don't doesn't didn't can't cannot couldn't won't wouldn't shan't shouldn't isn't aren't wasn't "
    "weren't haven't hasn't hadn't mustn't mightn't needn't ain't".split()
)
# linking verbs take a subject complement that stays with them: "becomes | surprisingly cold"
LINKING_VERBS = set(
    "become becomes became becoming seem seems seemed appear appears appeared feel feels felt "
    "look looks looked sound sounds sounded remain remains remained stay stays stayed grow grows "
    "grew turn turns turned get gets got getting".split()
)
# a focusing/degree adverb goes with the clause or phrase it introduces: "tell you | exactly what happened",
# "| right after the war", "| even though"
FOCUS_ADVERBS = set(
    "just only even right exactly precisely shortly soon long almost nearly especially "
    "particularly mainly mostly partly simply largely straight somewhere".split()
)
# quantity nouns + "of" are one noun phrase: "millions of tons", "most of them", "a cup of coffee"
QUANTITY_NOUNS = set(
    "millions thousands hundreds dozens billions tens lots lot plenty most much many some none all "
    "half part number couple kind sort bit piece pieces cup cups glass bottle amount amounts rest "
    "each both one two three several few majority loads deal".split()
)
# adverbs of direction complete a verb of motion: "fly | south", "came | together"
DIRECTIONAL = set(
    "home back away south north east west abroad upstairs downstairs ahead apart together forward "
    "forwards backwards overseas ashore aboard".split()
)
# semi-modals: "wanted to talk", "have to go", "used to spend" behave like auxiliary + verb
SEMI_MODALS = set(
    "want wants wanted need needs needed have has had going used ought able supposed got".split()
)
# "more than fifty", "rather than", "other than": the comparison word opens the phrase after it
COMPARATIVE_THAN = set("more less fewer rather other".split())
# a time adverbial noun phrase ("twenty years ago", "every summer", "last night") is a natural break point
# before it
TIME_NOUNS = set(
    "ago second seconds minute minutes hour hours day days week weeks month months year years decade "
    "decades century centuries morning mornings afternoon evening evenings night nights summer winter "
    "spring autumn weekend time times".split()
)
TIME_OPENERS = set("every last next this each".split())
NEGATIONS = set("not never n't".split())
CONJUNCTIONS = set(
    "and but or nor so yet because although though while whereas if unless until when whenever "
    "where wherever since whether than that which who whom whose once why what how".split()
)
PREPOSITIONS = set(
    "about above across after against along among around at before behind below beneath beside "
    "besides between beyond by despite down during except for from in inside into like near of off "
    "on onto out outside over past per through throughout to toward towards under underneath unlike "
    "up upon via with within without".split()
)
INTENSIFIERS = set("very so too really quite rather pretty most more less least just even almost".split())
NUMBERS = set(
    "one two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty hundred "
    "thousand million billion first second third last next".split()
)
ADJECTIVES = set(
    "good bad new old great big small little long short high low large young right left wrong "
    "best better worse worst other same different important real whole sure free full true false "
    "early late hard easy strong weak clear dark light black white red green blue cold hot warm "
    "dead open huge tiny nice fine beautiful happy sad poor rich single only main major local "
    "public private human social political national final special certain entire simple "
    "whole empty quiet loud fast slow deep wide safe busy strange lovely perfect terrible".split()
)
_ADJ_SUFFIXES = ("ful", "ous", "ive", "able", "ible", "less", "ical", "ish", "est")
FUNCTION_WORDS = (
    DETERMINERS
    | SUBJECT_PRONOUNS
    | AUXILIARIES
    | NEGATIONS
    | CONJUNCTIONS
    | PREPOSITIONS
    | INTENSIFIERS
    | set("me him us them it's there here".split())
)

# --- Chinese word classes -----------------------------------------------------------------------------------
ZH_CONJUNCTIONS = set(
    "但是 可是 而且 因为 所以 如果 虽然 然后 或者 并且 而 但 不过 因此 于是 即使 只要 只有 除非 "
    "无论 不管 以及 同时 否则 那么 要是 既然 尽管 甚至 接着 然而 以便 为了 不然".split()
)
ZH_PREPOSITIONS = set(
    "在 从 对 把 被 向 给 跟 和 与 关于 按照 通过 由于 对于 根据 随着 除了 为 往 朝 自从 经过 由 用 以 "
    "让 比 离 沿着 沿 替 依照 直到 自 趁 凭 当".split()
)
# postpositions/localizers close a phrase and stay with the word before them: 雨林 | 里 is wrong
ZH_LOCALIZERS = set(
    "里 上 中 下 内 外 旁 边 之间 之中 之前 之后 之上 之下 以后 以前 以来 以外 以内 以上 以下 时 的时候 "
    "期间 似的 一样 左右 后面 前面 里面 外面 上面 下面 旁边 中间 对面 附近".split()
)
ZH_PARTICLES = set("了 着 过 的 地 得 吗 呢 吧 啊 呀 么 们 嘛 啦 哦 喔 哈".split())
ZH_ATTACH_RIGHT = set(
    "这 那 这个 那个 这些 那些 每 各 某 一个 一些 几个 哪个 很 太 最 更 非常 特别 比较 不 没 没有 "
    "别 会 能 要 可以 应该 想 得 是 就 都 也 还 又 再 才".split()
)
# modal/auxiliary verbs and adverbs that open a predicate: a subject noun | before them is a natural break
ZH_MODALS = set("会 能 能够 可以 可能 应该 应当 必须 需要 要 将 将会 想 愿意 敢 得以 打算 准备".split())
# resultative/directional complements stay with their verb: 孵化 | 出来, 整理 | 成
ZH_COMPLEMENTS = set(
    "出来 出去 起来 下来 下去 上来 上去 过来 过去 回来 回去 进来 进去 开来 到 成 完 好 掉 住 走 见 懂 "
    "清楚 明白 出 进 回 起 开 下 上 够 光 遍 满 透 坏 错 对 着 动 惯 会".split()
)
_ZH_DEMONSTRATIVE = set("这那每某哪各该此本")
_ZH_NUMERAL = set("一二三四五六七八九十百千万亿两几半多数零〇0123456789")
# after a person (a name or pronoun) these are time adverbs, not localizers:
# 贝克以前是军人 = Baker was formerly ...
ZH_TIME_ADVERBS = set("以前 以后 之前 之后 后来 现在 当时 从前 过去 曾经".split())
ZH_PRONOUNS = set("我 你 您 他 她 它 我们 你们 他们 她们 它们 咱们 大家 自己".split())
_NAME_DOT = ("·", "・", "•", "‧")
_ZH_DROP = set("，。,.")  # shown as a space inside a Chinese line, dropped at its end
_ZH_FULL_WIDTH = {"?": "？", "!": "！", ":": "：", ";": "；"}


@lru_cache(maxsize=1 << 16)
def zh_tags(word: str) -> tuple[str, str]:
    """(first, last) part-of-speech tags of a Chinese word from jieba's dictionary (posseg) - "n", "v", "a",
    "d", "m", "q", "r", "p", "c", "u", "f", "t", "nr", ... - or ("", "") for punctuation and Latin text."""
    if not word or not has_cjk(word):
        return ("", "")
    from jieba import posseg

    _jieba()
    tag = posseg.dt.word_tag_tab.get(word)
    if tag:
        return (tag, tag)
    pairs = [(p.word, p.flag) for p in posseg.lcut(word, HMM=True) if p.word.strip()]
    if not pairs:
        return ("", "")
    return (pairs[0][1], pairs[-1][1])


def _zh_nominal(tag: str) -> bool:
    return tag[:1] == "n" or tag in ("vn", "an", "s", "nz", "l", "i", "j")


def _zh_classifier_phrase(word: str) -> bool:
    """这座, 那支, 三个, 两百多个, 一台: a demonstrative or numeral + measure word, which belongs to the noun
    after it."""
    if len(word) < 2:
        return False
    first, last = zh_tags(word)
    if word[0] in _ZH_DEMONSTRATIVE and len(word) == 2:
        return True
    return first == "m" and word[-1] not in "年月日号天点分秒岁次遍" and not word.endswith("年代")


@dataclass(frozen=True)
class Unit:
    """An unbreakable run of recogniser words: ``first``..``last`` (inclusive) word indices and their text."""

    text: str
    first: int
    last: int


def is_cjk_char(ch: str) -> bool:
    return "CJK" in unicodedata.name(ch, "") or "\u3000" <= ch <= "\u30ff" or "\uff00" <= ch <= "\uffef"


def has_cjk(text: str) -> bool:
    return any(is_cjk_char(ch) for ch in text)


def _bare(token: str) -> str:
    return token.replace("’", "'").strip(_OPENERS + _CLOSERS + ".,;:!?…，。；：！？、—–-").lower()


def _tail(token: str) -> str:
    stripped = token.rstrip(_CLOSERS)
    return stripped[-1] if stripped else ""


def ends_sentence(token: str) -> bool:
    return _tail(token) in SENTENCE_END


def ends_clause(token: str) -> bool:
    return _tail(token) in CLAUSE_END or token.rstrip(_CLOSERS).endswith("--")


# --- units
# ----------------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _jieba():
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def is_trailing_punctuation(token: str) -> bool:
    """A token that is only punctuation closing what came before (",", "。", "?", "”", "..."): never starts a
    line."""
    return bool(token) and all(
        ch in SENTENCE_END or ch in CLAUSE_END or ch in _CLOSERS or ch == "-" for ch in token
    )


_OPEN_ONLY = set(_OPENERS) - set(_CLOSERS)


def is_opening_punctuation(token: str) -> bool:
    """A token that only opens what follows ("“", "(", "「"): never ends a line."""
    return bool(token) and all(ch in _OPEN_ONLY for ch in token)


def build_units(texts: list[str], language: str) -> list[Unit]:
    """Group recogniser word texts into units. English: one per word. Chinese: one per jieba word.

    A punctuation-only word joins the word before it, an opening quote/bracket the word after it, in both.
    """
    texts = [" ".join(t.split()) for t in texts]
    n = len(texts)
    zh = language_family(language) == "zh"
    boundaries: set[int] = set()
    if zh:
        joined = "".join(texts)
        boundaries = {0, len(joined)}
        pos = 0
        for token in _jieba().lcut(joined, HMM=True):
            if pos and is_trailing_punctuation(token):
                boundaries.discard(pos)  # punctuation stays with the word before it
            pos += len(token)
            if not is_opening_punctuation(token):
                boundaries.add(pos)  # an opening quote stays with the word after it
    units: list[Unit] = []
    offset = 0
    start = 0
    for i, text in enumerate(texts):
        offset += len(text)
        if i < n - 1:
            nxt = texts[i + 1]
            if is_trailing_punctuation(nxt) or is_opening_punctuation(text):
                continue
            if zh and (nxt.startswith(_NAME_DOT) or text.endswith(_NAME_DOT)):
                continue  # 托马斯·贝克: a foreign name with its interpunct is one unit
            # Chinese: break where jieba puts a word boundary, or between two Latin/digit tokens
            if zh and text and nxt and offset not in boundaries and (has_cjk(text[-1]) or has_cjk(nxt[0])):
                continue
        units.append(Unit(join_texts(texts[start : i + 1], language), start, i))
        start = i + 1
    if zh and len(units) > 1:
        units = _merge_bare_punctuation(units, texts, language)
    return units


def _merge_bare_punctuation(units: list[Unit], texts: list[str], language: str) -> list[Unit]:
    """A Chinese unit of punctuation alone (a stream starting with "。") shows nothing once commas and full
    stops are dropped: it joins the next unit (the last one joins the one before)."""
    out: list[Unit] = []
    carry: Unit | None = None
    for u in units:
        if carry is not None:
            u = Unit(join_texts(texts[carry.first : u.last + 1], language), carry.first, u.last)
            carry = None
        if is_trailing_punctuation(u.text) and u is not units[-1]:
            carry = u
            continue
        out.append(u)
    if carry is not None or (out and is_trailing_punctuation(out[-1].text) and len(out) > 1):
        last = carry or out.pop()
        prev = out.pop()
        out.append(Unit(join_texts(texts[prev.first : last.last + 1], language), prev.first, last.last))
    return out


def join_texts(texts: list[str], language: str) -> str:
    """Join tokens as they are written: spaces in English; none in Chinese except between Latin words; never a
    space before closing punctuation or after an opening quote."""
    texts = [t for t in (t.strip() for t in texts) if t]
    zh = language_family(language) == "zh"
    out, prev = "", ""
    for t in texts:
        if out and not (is_trailing_punctuation(t) or is_opening_punctuation(prev)):
            if not zh or (
                not has_cjk(out[-1]) and not has_cjk(t[0]) and out[-1].isalnum() and t[0].isalnum()
            ):
                out += " "
        out += t
        prev = t
    return out


# --- break costs
# ----------------------------------------------------------------------------------------------
def _is_adjective(word: str) -> bool:
    return word in ADJECTIVES or (len(word) > 5 and word.endswith(_ADJ_SUFFIXES))


def _is_name_part(token: str) -> bool:
    core = token.strip(_OPENERS + _CLOSERS)
    return len(core) > 1 and core[0].isupper() and core[1:].islower() and core.isalpha()


def _heads_noun_phrase(units, k: int) -> bool:
    """Whether ``units[k - 1]`` ends a noun phrase (a determiner or adjective before it), so is no verb."""
    before = _bare(units[k - 2]) if k >= 2 else ""
    return before in DETERMINERS or _is_adjective(before)


def _starts_with_punctuation(token: str) -> bool:
    return bool(token) and (token[0] in SENTENCE_END | CLAUSE_END or token[0] in _CLOSERS)


def break_cost_en(units: list[str], k: int) -> int:
    """Cost of breaking between ``units[k-1]`` and ``units[k]`` in English."""
    left, right = units[k - 1], units[k]
    if _starts_with_punctuation(right):
        return 100  # a line never starts with the punctuation that ends the one above
    if ends_sentence(left):
        return 0
    if ends_clause(left):
        return 1
    lw, rw = _bare(left), _bare(right)
    if rw in NEGATIONS or rw.endswith("n't") and lw in SUBJECT_PRONOUNS:
        return 60  # verb | not
    if lw in DETERMINERS:
        return 60  # the | house
    if rw == "to" and lw in SEMI_MODALS and k + 1 < len(units) and _bare(units[k + 1]) not in FUNCTION_WORDS:
        return 45  # wanted | to talk
    if rw == "than" and lw in COMPARATIVE_THAN:
        return 40  # more | than fifty
    if rw == "of" and lw in QUANTITY_NOUNS:
        return 45  # millions | of tons
    if lw in FOCUS_ADVERBS and (rw in CONJUNCTIONS or rw in PREPOSITIONS):
        return 35  # exactly | what happened: the adverb belongs to the clause after it
    if (
        rw in FOCUS_ADVERBS
        and k + 1 < len(units)
        and _bare(units[k + 1]) in CONJUNCTIONS | PREPOSITIONS
        and (
            lw not in FUNCTION_WORDS
            or lw in OBJECT_PRONOUNS
            or lw == "you"
            and k > 1
            and _bare(units[k - 2]) not in FUNCTION_WORDS
        )
    ):
        return 3  # tell you | exactly what happened
    if lw in AUXILIARIES or lw in NEGATIONS:
        return 50 if rw not in CONJUNCTIONS else 5  # will | go, not | now
    if lw in SUBJECT_PRONOUNS and rw not in CONJUNCTIONS | PREPOSITIONS:
        return 50  # she | said
    if (
        lw.endswith("ly")
        and k > 1
        and _bare(units[k - 2]) in SUBJECT_PRONOUNS
        and rw not in CONJUNCTIONS | PREPOSITIONS
    ):
        return 50  # I honestly | don't remember: subject + adverb + verb
    if (
        rw == "you"
        and lw not in FUNCTION_WORDS
        and not lw.endswith("ly")
        and k + 1 < len(units)
        and _bare(units[k + 1]) not in AUXILIARIES
    ):
        return 40  # tell | you: an object pronoun stays with its verb
    if lw == "to" and rw not in FUNCTION_WORDS:
        return 45  # to | go
    if lw in INTENSIFIERS and rw not in CONJUNCTIONS | PREPOSITIONS:
        return 40  # very | good
    if _is_name_part(left) and _is_name_part(right) and lw not in FUNCTION_WORDS and rw not in FUNCTION_WORDS:
        return 55  # John | Smith
    if (_is_adjective(lw) or lw in NUMBERS or lw.isdigit()) and rw not in FUNCTION_WORDS:
        return 40  # red | car, three | days
    if lw in LINKING_VERBS and (rw.endswith("ly") or _is_adjective(rw) or rw in INTENSIFIERS):
        return 40  # becomes | surprisingly cold: a linking verb keeps its complement
    if lw in PREPOSITIONS:
        return 35  # in | the house
    if lw in CONJUNCTIONS:
        return 35  # and | then
    if rw in OBJECT_PRONOUNS:
        return 40  # call | me: an object pronoun stays with its verb
    if rw in DIRECTIONAL and lw not in FUNCTION_WORDS and not _heads_noun_phrase(units, k):
        return 40  # fly | south: a direction completes its verb (not "a long lunch | together")
    if rw in CONJUNCTIONS:
        return 2
    if (
        (rw in TIME_OPENERS or rw in NUMBERS or rw.isdigit())
        and lw not in FUNCTION_WORDS
        and any(_bare(t) in TIME_NOUNS for t in units[k + 1 : k + 3])
        and not ends_clause(right)
    ):
        return 5  # opened this restaurant | twenty years ago
    if rw in PREPOSITIONS:
        after = _bare(units[k + 1]) if k + 1 < len(units) else ""
        if not after or after in PREPOSITIONS | CONJUNCTIONS or ends_sentence(right) or ends_clause(right):
            return 40  # a particle without an object belongs to its verb: put it | down
        if rw == "of":
            return 20  # "of" binds to the noun before it: half | of its members
        return 3
    return NEUTRAL


def break_cost_zh(units: list[str], k: int) -> int:
    """Cost of breaking between ``units[k-1]`` and ``units[k]`` in Chinese (units are jieba words)."""
    left, right = units[k - 1], units[k]
    if _starts_with_punctuation(right):
        return 100
    if ends_sentence(left):
        return 0
    if ends_clause(left):
        return 1
    lw, rw = _bare(left), _bare(right)
    if rw in ZH_PARTICLES or (rw and rw[0] in "了着过的地得吗呢吧啊呀么们"):
        return 60  # particles stay with the word before them
    lt, rt = zh_tags(lw)[1], zh_tags(rw)[0]
    if rw in ZH_TIME_ADVERBS and (lt in ("nr", "nrt", "nrfg") or lw in ZH_PRONOUNS):
        return 25 if lw in ZH_PRONOUNS else 8  # 贝克 | 以前是一名军人 (subject | predicate)
    if (
        lw in ZH_TIME_ADVERBS
        and k > 1
        and (zh_tags(_bare(units[k - 2]))[1] in ("nr", "nrt", "nrfg") or _bare(units[k - 2]) in ZH_PRONOUNS)
    ):
        return 35  # 贝克以前 | 是: the adverb stays with its verb
    if rw in ZH_LOCALIZERS or (rt == "f" and len(rw) <= 2 and lt and lt not in "pc"):
        return 50  # 热带雨林 | 里
    if len(lw) == 1 and lt[:1] == "v" and rw in ("在", "到", "给", "向", "往", "成", "于"):
        return 40  # 放 | 在桌子上 (把书放在…): after a one-character verb these complete it
    if lw.endswith(("的", "地", "得")) and len(lw) > 0:
        return 45  # 美丽的 | 花园
    if lw in ZH_ATTACH_RIGHT:
        return 45  # 这个 | 问题, 不 | 是
    if (
        _zh_classifier_phrase(lw)
        and rt[:1] in ("n", "a", "b", "v", "l", "m", "s", "t")
        and rw not in ZH_MODALS
    ):
        return 45  # 两百多个 | 湖泊, 这座 | 城市 (a measure word belongs to its noun)
    if rt in ("u", "uj", "ul", "uz", "ug", "uv", "ud", "y", "e") or rw in ZH_COMPLEMENTS and lt[:1] == "v":
        return 50  # 孵化 | 出来, 整理 | 成: particles and verb complements stay with the verb
    if lw in ZH_CONJUNCTIONS or lw in ZH_PREPOSITIONS:
        return 40  # 因为 | 我们
    if lt == "p" or len(lw) == 2 and lw[0] in "是就都也还又才正" and lw[1] in "从在向往把被给跟对比由":
        return 40  # 从 | 边境, 是从 | 边境 (jieba joins an adverb or 是 to the preposition after it)
    if lt == "c" and len(lw) > 1:
        return 40  # 之所以 | 回到
    if rw in ZH_CONJUNCTIONS or (rt == "c" and len(rw) > 1):
        return 2
    if rw in ZH_PREPOSITIONS:
        return 3
    if lt in ("a", "b", "ad", "an") and (_zh_nominal(rt) or rt == "b"):
        return 40  # 小 | 村庄, 非法 | 商贩: an adjective stays with its noun
    if lt[:1] == "d" and lw not in ("届时", "然后", "后来", "当时", "其实", "同时", "最后", "首先"):
        return 35  # 已经 | 消失, 终于 | 破壳: an adverb stays with the verb it modifies
    if _inside_classifier_noun_phrase(units, k):
        return 35  # 那支来自 | 小村庄的球队: inside one noun phrase
    if _zh_classifier_phrase(rw) and (lt[:1] == "v" or lt == "l") and lw not in ZH_MODALS:
        return 10  # 推出 | 一个关于…的新展览: a verb | its object noun phrase, opened by a measure word
    if (_zh_nominal(lt) or lt == "t") and rt == "m" and not _zh_classifier_phrase(rw):
        return 30  # 上世纪 | 七十年代: a time or quantity phrase
    if _zh_nominal(lt) and (_zh_nominal(rt) or rt == "b") and lt not in ("l", "i") and rt not in ("l", "i"):
        return 30  # 城市 | 港口 | 历史: nouns modifying a noun
    if (_zh_nominal(lt) or lt == "r" and len(lw) > 1 and lw not in ZH_PRONOUNS) and (
        rw in ZH_MODALS or rt[:1] == "d" or rw in ZH_ATTACH_RIGHT and rw not in ("这", "那", "这个", "那个")
    ):
        return 8  # 珊瑚礁 | 可能会..., 小镇 | 一直很难: between a subject and its predicate
    if lw in ZH_PRONOUNS:
        return 25  # 我 | 觉得
    if lw.isdigit() or lw in set("一二三四五六七八九十两几半"):
        return 40
    return NEUTRAL


def _inside_classifier_noun_phrase(units: list[str], k: int) -> bool:
    """True if a break before ``units[k]`` falls inside 那支 [来自小村庄] 的 球队: a noun phrase opened by a
    demonstrative/numeral + measure word and closed by a 的-modifier and its head noun, in the same clause."""
    j, found = k - 2, False
    while j >= 0 and k - 1 - j <= 3:
        if ends_clause(units[j]) or ends_sentence(units[j]):
            return False
        t = _bare(units[j])
        if _zh_classifier_phrase(t) and t[-1] not in "年月日号天点分秒岁次遍周回":
            found = True
            break
        j -= 1
    if not found:
        return False
    for m in range(k, min(len(units) - 1, k + 4)):
        if ends_clause(units[m - 1]) or ends_sentence(units[m - 1]) or ends_sentence(units[m]):
            return False
        t = _bare(units[m])
        if zh_tags(t)[0][:1] in ("d", "p", "c"):
            return False  # a predicate starts: 那个人 | 都在…的
        if t.endswith("的") and not ends_clause(units[m]):
            return _zh_nominal(zh_tags(_bare(units[m + 1]))[0])
    return False


def break_costs(unit_texts: list[str], language: str) -> list[int]:
    """``costs[k]`` = cost of a break before unit ``k`` (``costs[0]`` is 0)."""
    fn = break_cost_zh if language_family(language) == "zh" else break_cost_en
    return [0] + [fn(unit_texts, k) for k in range(1, len(unit_texts))]


# --- display
# --------------------------------------------------------------------------------------------------
def display_line(unit_texts: list[str], language: str) -> str:
    """The text of one line as shown. Chinese: commas/full stops become a space, none at the end."""
    return _display_line(tuple(unit_texts), "zh" if language == "zh" else language_family(language))


@lru_cache(maxsize=1 << 16)
def _display_line(unit_texts: tuple[str, ...], family: str) -> str:
    text = join_texts(list(unit_texts), family)
    if family != "zh":
        return text
    text = re.sub(r"[，。](?=[”’」』）)])", "", text)  # “你好，”他说 -> “你好”他说
    for half, full in _ZH_FULL_WIDTH.items():
        text = re.sub(rf"(?<=[\u3400-\u9fff]){re.escape(half)}", full, text)
    text = "".join(" " if ch in _ZH_DROP and _zh_punct_context(text, i) else ch for i, ch in enumerate(text))
    text = re.sub(r" {2,}", " ", text)
    return text.strip()


def _zh_punct_context(text: str, i: int) -> bool:
    """True if the comma/full stop at ``i`` is Chinese punctuation (not a decimal point or an English
    comma)."""
    ch = text[i]
    if ch in "，。":
        return True
    before = text[i - 1] if i > 0 else ""
    after = text[i + 1] if i + 1 < len(text) else ""
    if before.isdigit() and after.isdigit():
        return False  # 3.14, 1,000
    return bool(before and has_cjk(before)) or not after or bool(after and has_cjk(after))


def line_length(text: str) -> int:
    """Characters as the style guides count them (every character, spaces and punctuation included)."""
    return len(text)


# --- layout
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    lines: tuple[str, ...]
    breaks: tuple[int, ...]  # unit indices (relative to the cue) where a new line starts
    cost: float


def layout_lines(
    unit_texts: list[str], costs: list[int], preset: CaptionPreset, language: str
) -> Layout | None:
    """Best layout of one cue's units into at most ``preset.max_lines`` lines, or None if it cannot fit.

    One line whenever it fits; otherwise the fewest lines, choosing breaks by rule cost and balance (a
    slightly longer bottom line is preferred, an orphan word on a line is penalised).
    """
    n = len(unit_texts)
    cpl = preset.max_chars_per_line
    family = language_family(language)
    width = _width_function(unit_texts, family)
    if width(0, n) <= cpl:
        # (a clause ending inside a single line is fine: there is no line break to move)
        inner = sum(MID_LINE_SENTENCE for k in range(n - 1) if ends_sentence(unit_texts[k]))
        return Layout((display_line(unit_texts, family),), (), inner)
    if preset.max_lines == 1 or n == 1:
        return None
    for lines in range(2, preset.max_lines + 1):
        best = _best_split(unit_texts, costs, cpl, lines, family, width)
        if best is not None:
            return best
    return None


def _width_function(unit_texts: list[str], family: str):
    """``width(i, j)``: displayed characters of units i..j-1 as one line (English by prefix sums, no
    strings)."""
    if family != "zh":
        prefix = [0]
        for t in unit_texts:
            prefix.append(prefix[-1] + len(t))
        return lambda i, j: prefix[j] - prefix[i] + (j - i - 1)
    return lambda i, j: line_length(display_line(unit_texts[i:j], family))


@lru_cache(maxsize=1 << 16)
def _inner_penalty(text: str) -> int:
    """Cost of this unit ending a sentence/clause *inside* a line (the next one should start a line)."""
    return MID_LINE_SENTENCE if ends_sentence(text) else (MID_LINE_CLAUSE if ends_clause(text) else 0)


def _best_split(unit_texts, costs, cpl, lines, family, width) -> Layout | None:
    n = len(unit_texts)
    if n < lines:
        return None
    target = width(0, n) / lines
    inner = [0]  # prefix sums of _inner_penalty
    for t in unit_texts:
        inner.append(inner[-1] + _inner_penalty(t))
    # DP over (line index, start unit) -> best (cost, breaks)
    best: dict[int, tuple[float, tuple[int, ...]]] = {0: (0.0, ())}
    for line in range(lines):
        last_line = line == lines - 1
        nxt: dict[int, tuple[float, tuple[int, ...]]] = {}
        for start, (cost, breaks) in best.items():
            ends = (n,) if last_line else range(start + 1, n - (lines - line - 1) + 1)
            for end in ends:
                w = width(start, end)
                if w > cpl:
                    break
                c = cost + _line_cost(
                    w,
                    target,
                    cpl,
                    end - start,
                    last_line,
                    lines,
                    whole_clause=start == 0 and _inner_penalty(unit_texts[end - 1]) > 0,
                )
                c += inner[end - 1] - inner[start]
                if not last_line:
                    c += costs[end]
                if end not in nxt or c < nxt[end][0]:
                    nxt[end] = (c, breaks if last_line else breaks + (end,))
        best = nxt
        if not best:
            return None
    final = best.get(n)
    if final is None:
        return None
    cost, breaks = final
    bounds = (0,) + breaks + (n,)
    return Layout(
        tuple(display_line(unit_texts[a:b], family) for a, b in zip(bounds, bounds[1:])), breaks, cost
    )


def _line_cost(
    width: int, target: float, cpl: int, units: int, last_line: bool, lines: int, whole_clause: bool = False
) -> float:
    # Balance: 1 point per ~6 % of the line limit away from an even split; bottom-heavy is cheaper than
    # top-heavy.
    diff = width - target
    cost = abs(diff) / cpl * 16
    if not last_line and diff > 0:
        cost *= 1.5  # top line longer than the bottom (inverted pyramid)
    if units == 1 and width < cpl / 3:
        # orphan: a single short word alone on a line; a whole clause on the top line ("说实话，",
        # "Honestly,") is not stranded from its phrase (only the imbalance counts)
        cost += 0 if whole_clause else 25
    return cost

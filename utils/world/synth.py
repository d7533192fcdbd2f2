"""The synthetic corpus of the offline world: DialogSum-style dialogues and the probe tasks.

Run ``python -m utils.world.synth`` (or ``make data``) to write ``data/dialogsum/``, ``data/probes/`` and
``data/chats/`` (SAMSum-style chats, the tiny model's held-in summarization task) and refresh the
statistics in the data card ``data/README.md`` (``--card`` does only the latter).
Everything is drawn from seeded random generators, so the default seed reproduces the committed
files byte for byte.

How a dialogue is made: a *scenario family* (a function below, e.g. :func:`invitation`) draws slot
values (people, days, places, prices, ...), picks an outcome (accept or decline, buy or leave, ...)
and writes each turn in one of several phrasings. Small talk and distractor turns (which mention
names and places that do not matter) are mixed in, so a summary must pick out what matters.
Every family also has several summary phrasings: the test split gets three different ones per
dialogue, like DialogSum's three human references.

Where the words live: the shared phrasing tables (slot pools, small talk, background frames, app-review
and chat phrasings) are data, ``phrasing.json`` next to this file; its ``"_about"`` key says what each
table holds, and :func:`load_phrasing` checks it against :data:`PHRASING_SCHEMA` once, at import. Each
scenario family keeps its own turns and summaries in its function, where they read as the scene's script.

Copying, not recall: names, places, prices and clock times are open classes, as in real dialogues. Half of
their slots get a made-up value (:func:`made_up_form`: "Fezol", "$157", "7:40 pm") instead of a pool value,
in every split and task, so a summary can only carry them by copying them from its dialogue.

Generalization, not recall: :data:`HELD_OUT` keeps a dozen made-up values per open class for the target
task's test split alone; about half of its dialogues contain one and no other file contains any.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from utils import data
from utils.config import DATA_DIR, TINY_MODEL_DIR
from utils.data import PROBES, SPLITS, TARGET_COLUMNS, read_jsonl
from utils.evaluation import contains, is_number, normalize

DEFAULT_SEED = 1234
#: Dialogues per split of the target task (the test split has 3 reference rows per dialogue).
TARGET_SIZES = {"train": 4000, "validation": 250, "test": 250}
#: Examples per split of every probe task.
PROBE_SIZES = {"train": 2500, "validation": 200, "test": 300}
N_REFERENCES = 3

# ---------------------------------------------------------------------------------------------
# The phrasing tables: data in phrasing.json, checked against their schema when synth is imported
# ---------------------------------------------------------------------------------------------

PHRASING_FILE = Path(__file__).with_name("phrasing.json")


@dataclass(frozen=True)
class Many:
    """Schema of a list: each element fits ``item``; non-empty unless ``empty_ok``."""

    item: object
    empty_ok: bool = False


#: Schema of a pool value: a string, or the list of its forms (as a dialogue says it, as a summary says it).
FORMS = "a string or a list of strings"
TEXTS = Many(str)
#: The shape of phrasing.json (its ``"_about"`` says what each table means). A schema is a dict of required
#: keys, ``{"*": schema}`` (any keys, each value fitting the schema), :class:`Many`, ``str``, :data:`FORMS`
#: or a set of the allowed strings.
PHRASING_SCHEMA = {
    "_about": {"*": TEXTS},
    "pools": {"*": Many(FORMS)},
    "small_talk": Many({"where": {"start", "mid", "end"}, "audience": {"friends", "all"},
                        "openers": TEXTS, "replies": TEXTS}),
    "background_frames": {"*": str},
    "apps": {"*": {"names": TEXTS, "features": TEXTS}},
    "points": {"*": {"praise": TEXTS, "praise_titles": TEXTS, "complaints": TEXTS, "complaint_titles": TEXTS}},
    "intros": TEXTS,
    "verdicts": {"positive": TEXTS, "negative": TEXTS},
    "turns": {"positive": TEXTS, "negative": TEXTS},
    "asides": {"positive": str, "negative": str},
    "chat_names": TEXTS,
    "chat_swaps": Many({"pattern": str, "informal": str}),
    "chat_endings": TEXTS,
}


def check_shape(value, schema, where: str = "") -> None:
    """Raise ``ValueError`` naming the first key or item of ``value`` (``pools.day.seen[2]``) that does not
    fit ``schema``."""
    at = where or "the top level"
    if isinstance(schema, dict):
        if not isinstance(value, dict) or not value:
            raise ValueError(f"{at} should be a non-empty JSON object")

        def child(key: str) -> str:
            return f"{where}.{key}" if where else key

        if "*" in schema:
            for key, item in value.items():
                check_shape(item, schema["*"], child(key))
            return
        for key in schema:
            if key not in value:
                raise ValueError(f"key {child(key)!r} is missing")
        for key in value:
            if key not in schema:
                raise ValueError(f"key {child(key)!r} is unknown (expected: {', '.join(schema)})")
            check_shape(value[key], schema[key], child(key))
    elif isinstance(schema, Many):
        if not isinstance(value, list) or not (value or schema.empty_ok):
            raise ValueError(f"{at} should be a{'' if schema.empty_ok else ' non-empty'} JSON list")
        for i, item in enumerate(value):
            check_shape(item, schema.item, f"{where}[{i}]")
    elif schema is FORMS:
        if not (isinstance(value, str) or isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
            raise ValueError(f"{at} should be {FORMS}, not {value!r}")
    elif isinstance(schema, set):
        if value not in schema:
            raise ValueError(f"{at} should be one of {', '.join(sorted(schema))}, not {value!r}")
    elif not isinstance(value, schema):
        raise ValueError(f"{at} should be a {schema.__name__}, not {value!r}")


def load_phrasing(path: Path = PHRASING_FILE) -> dict:
    """The phrasing tables of ``path`` (:data:`PHRASING_FILE`), checked against :data:`PHRASING_SCHEMA`.

    A pool value with several forms becomes a tuple (``(dialogue form, summary form)``, see :func:`spoken`).
    """
    try:
        tables = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} is missing: it holds synth's phrasing tables. Restore it from the "
                                f"repository (git checkout -- {path.name}) or reinstall the package.") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None
    try:
        check_shape(tables, PHRASING_SCHEMA)
        pools, frames = tables["pools"], tables["background_frames"]
        for key in frames:
            if key not in pools:
                raise ValueError(f"key 'background_frames.{key}' names no pool of 'pools'")
    except ValueError as err:
        raise ValueError(f"{path}: {err}. Its \"_about\" says what each table holds.") from None
    for key, pool in tables["pools"].items():
        tables["pools"][key] = [tuple(v) if isinstance(v, list) else v for v in pool]
    return tables


PHRASING = load_phrasing()

# ---------------------------------------------------------------------------------------------
# Slot pools, made-up values of the open classes, and the values held out for the target's test split
# ---------------------------------------------------------------------------------------------

POOLS: dict[str, list] = PHRASING["pools"]
#: The chatters' first names (never the slot pool's names, so a summary's people are the speakers).
CHAT_NAMES: list[str] = PHRASING["chat_names"]
#: Every word of the phrasing tables, lower-cased: a made-up value is never one of them.
PHRASING_TEXT = PHRASING_FILE.read_text(encoding="utf-8")
PHRASING_WORDS = frozenset(re.findall(r"[a-z]+", PHRASING_TEXT.lower()))

#: The open classes: pool key -> the form of its made-up values (``word``: a new name or place; ``$lo-hi``:
#: a price; ``am``/``pm``: a clock time; ``lo-hi``: a number).
OPEN_FORMS: dict[str, str] = {
    "name": "word", "surname": "word", "venue": "word", "restaurant": "word", "city": "word", "company": "word",
    "price": "$12-199", "fare": "$120-690", "rent": "$520-1490", "pm_time": "pm", "am_time": "am",
    "room": "101-989", "bus": "10-99",
}
#: Share of open-class slots that get a made-up value instead of a pool value.
OPEN_SHARE = 0.5
#: Made-up values per open class kept for the target task's test split (:data:`HELD_OUT`).
HELD_OUT_PER_POOL = 12

#: Syllables of made-up names: an onset, a vowel and a coda (the first syllable's onset may be a cluster).
ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z"]
CLUSTERS = ["br", "dr", "gr", "kr", "st", "tr"]
VOWELS = ["a", "e", "i", "o", "u"]
CODAS = ["", "", "l", "n", "r", "s"]


def made_up_word(rng: random.Random) -> str:
    """A pronounceable made-up name of two syllables ("Fezol", "Kastor"), never a word of the phrasing tables."""
    while True:
        first = rng.choice(ONSETS + CLUSTERS) + rng.choice(VOWELS) + rng.choice(CODAS)
        word = first + rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS + ["k", "m", "t"])
        if word not in PHRASING_WORDS:
            return word.capitalize()


def made_up_form(key: str, rng: random.Random) -> str:
    """A made-up value of the open class ``key`` (:data:`OPEN_FORMS`): a name, a price, a clock time or a number."""
    form = OPEN_FORMS[key]
    if form == "word":
        return made_up_word(rng)
    if form in ("am", "pm"):
        hour = rng.randint(7, 11) if form == "am" else rng.randint(5, 10)
        return f"{hour}:{rng.randrange(5, 60, 5):02d} {form}"
    low, high = map(int, form.lstrip("$").split("-"))
    number = rng.randint(low, high)
    return f"${number:,}" if form.startswith("$") else str(number)


def whole_words(value: str) -> re.Pattern:
    """``value`` as whole words, case-insensitively: "$157" is not in "$1,157", "7:40 pm" not in "17:40 pm"."""
    return re.compile(rf"(?<![\w$,:]){re.escape(value)}(?![\w:]|,\d)", re.IGNORECASE)


def _reserved_values(key: str, taken: set[str]) -> list[str]:
    """:data:`HELD_OUT_PER_POOL` made-up values of ``key`` (seeded by the key alone), none a word or number
    of the phrasing tables and none in ``taken`` (which is updated)."""
    rng = random.Random(f"held-out {key}")
    values: list[str] = []
    while len(values) < HELD_OUT_PER_POOL:
        value = made_up_form(key, rng)
        if value.lower() not in taken and not whole_words(value).search(PHRASING_TEXT):
            taken.add(value.lower())
            values.append(value)
    return values


def _held_out_values() -> dict[str, list[str]]:
    taken: set[str] = set()
    return {key: _reserved_values(key, taken) for key in OPEN_FORMS}


#: Made-up values only the target task's test split uses, per open class: a fine-tuned model can only write
#: them by copying them from the dialogue, as FLAN-T5 must copy DialogSum's new names and numbers.
HELD_OUT: dict[str, list[str]] = _held_out_values()
_HELD_OUT_LOWER = frozenset(v.lower() for values in HELD_OUT.values() for v in values)
_HELD_OUT_PATTERNS = [(v.lower(), whole_words(v)) for values in HELD_OUT.values() for v in values]


def held_out_values() -> dict[str, list[str]]:
    """The held-out values per open class (a copy of :data:`HELD_OUT`, for checks and the data card)."""
    return {key: list(values) for key, values in HELD_OUT.items()}


def has_held_out_value(text: str) -> bool:
    """Does ``text`` contain a held-out value (one reserved for the target test split) as whole words?"""
    lower = text.lower()
    return any(value in lower and pattern.search(text) for value, pattern in _HELD_OUT_PATTERNS)


def spoken(value) -> str:
    """A pool value as a dialogue says it: the first form of a tuple (dialogue, summary, ...), else the value."""
    return value[0] if isinstance(value, tuple) else value


class Slots:
    """Draws slot values: an open class's slot is a made-up value with probability :data:`OPEN_SHARE`, any
    other slot a pool value.

    ``held_out=True`` (the target test split): an open class's slot is first a held-out value
    (:data:`HELD_OUT`) with probability 1/2. Made-up values are never held-out ones, and ``distractor``
    values (small talk, the option not taken) never are either.
    """

    def __init__(self, rng: random.Random, held_out: bool):
        self.rng, self.held_out = rng, held_out

    def __call__(self, key: str, exclude=()):
        if self.held_out and key in HELD_OUT and self.rng.random() < 0.5:
            return self.rng.choice(HELD_OUT[key])
        return self.distractor(key, exclude)

    def distractor(self, key: str, exclude=()):
        if key in OPEN_FORMS and self.rng.random() < OPEN_SHARE:
            while True:
                value = made_up_form(key, self.rng)
                if value.lower() not in _HELD_OUT_LOWER and value not in exclude:
                    return value
        return self.rng.choice([v for v in POOLS[key] if v not in exclude])


# ---------------------------------------------------------------------------------------------
# A scene: turns, summaries and QA facts as templates with {slot} fields and {A}/{B} roles
# ---------------------------------------------------------------------------------------------


@dataclass
class Scene:
    """One dialogue before rendering. Roles ``{A}``/``{B}`` become ``#Person1#``/``#Person2#``."""

    topic: str
    turns: list[tuple[str, str]]  # (role "A" or "B", text)
    summaries: list[str]  # alternative summaries (different phrasings of the same content)
    facts: list[tuple[str, str]] = field(default_factory=list)  # (question, answer span)
    slots: dict = field(default_factory=dict)


def cap(text: str) -> str:
    """Capitalize the first letter only."""
    return text[:1].upper() + text[1:]


def article(noun: str) -> str:
    """``a noun`` or ``an noun``."""
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def alternate(rng: random.Random, first: str, *lines: list[str]) -> list[tuple[str, str]]:
    """Turns spoken alternately, starting with role ``first``; each turn is one of its phrasings."""
    other = {"A": "B", "B": "A"}
    turns, role = [], first
    for options in lines:
        turns.append((role, rng.choice(options)))
        role = other[role]
    return turns


# ---------------------------------------------------------------------------------------------
# Scenario families
# ---------------------------------------------------------------------------------------------


def invitation(rng: random.Random, v: Slots) -> Scene:
    """A invites B; B accepts, declines with a reason, or moves it to another day."""
    day = v("day")
    reason = v("reason")
    s = dict(day=day, day2=v.distractor("day", exclude=[day]), event=v("event"), place=v("venue"),
             time=v("pm_time"), reason=reason[0], Reason=cap(reason[0]), why=reason[1].replace("{X}", "{B}"),
             other=v.distractor("name"))
    outcome = rng.choice(["accept", "accept", "decline", "move"])
    question, answer = rng.choice([("Are you free on {day}?", "I think so. Why?"),
                                   ("What are you doing on {day}?", "Nothing special. Why do you ask?"),
                                   ("Do you have any plans for {day}?", "Not yet. What's up?"),
                                   ("Hi! Are you busy on {day}?", "No, not really. Why?")])
    opening = [
        [question],
        [answer],
        ["Would you like to come to {event} with me?", "How about coming to {event} with me?",
         "I was wondering if you'd like to join me for {event}.", "I'm going to {event}. Want to come?"],
    ]
    if outcome == "accept":
        rest = [
            ["I'd love to! Where is it?", "Sounds great. Where should we meet?", "Sure, count me in. Where is it?"],
            ["At {place}. It starts at {time}.", "It's at {place}, at {time}.", "Let's meet at {place} at {time}."],
            ["Perfect, see you there.", "Great, I'll be there.", "OK. I'm looking forward to it."],
        ]
        summaries = [
            "{A} invites {B} to {event} on {day}. {B} accepts and they will meet at {place} at {time}.",
            "{B} agrees to go to {event} with {A} at {place} on {day} at {time}.",
            "{A} asks {B} to come to {event} on {day} at {time}, and {B} happily says yes.",
            "{A} and {B} will go to {event} together at {place} on {day}.",
            "{B} accepts {A}'s invitation to {event} on {day}. They will meet at {place}.",
            "{A} and {B} plan to go to {event} on {day} at {time}.",
        ]
        facts = [("Where will they meet?", "{place}"), ("What time does it start?", "{time}")]
    elif outcome == "decline":
        rest = [
            ["Oh, I'm sorry, I can't. {Reason}.", "I'd love to, but {reason}.",
             "That's kind of you, but I'm afraid {reason}."],
            ["That's a pity. Maybe next time.", "No problem. Another time, then.",
             "Oh well. I'll ask {other} instead."],
        ]
        summaries = [
            "{A} invites {B} to {event} on {day}, but {B} declines because {why}.",
            "{B} can't go to {event} with {A} on {day} because {why}.",
            "{A} asks {B} to come to {event}, but {B} says no because {why}.",
            "{B} turns down {A}'s invitation to {event} on {day} because {why}.",
            "{A} wants {B} to come to {event} on {day}. {B} can't, because {why}.",
            "{B} won't join {A} for {event} because {why}.",
        ]
        facts = [("Who will {A} ask instead?", "{other}")]
    else:
        rest = [
            ["I can't on {day}, {reason}. How about {day2}?",
             "Sorry, {reason}, so {day} is difficult. Could we go on {day2}?"],
            ["{day2} works for me too.", "Sure, let's go on {day2} then.", "OK, {day2} it is."],
        ]
        summaries = [
            "{A} invites {B} to {event} on {day}. {B} can't come because {why}, so they agree on {day2} instead.",
            "{B} can't join {A} for {event} on {day} because {why}. They go on {day2} instead.",
            "Because {why}, {B} suggests going to {event} on {day2} instead of {day}, and {A} agrees.",
            "{A} and {B} will go to {event} on {day2}, not {day}, because {why}.",
            "{A} asks {B} to {event} on {day}. They move it to {day2} because {why}.",
        ]
        facts = [("Which day do they agree on?", "{day2}")]
    facts += [("What does {A} invite {B} to?", "{event}")]
    return Scene("invitation", alternate(rng, "A", *opening, *rest), summaries, facts, s)


def shopping(rng: random.Random, v: Slots) -> Scene:
    """A customer (A) looks for an item, hears the price and buys it or finds it too expensive."""
    colour = v("colour")
    pay = v("payment")
    s = dict(item=v("item"), colour=colour, price=v("price"), pay=pay[0], paid=pay[1],
             colour2=v.distractor("colour", exclude=[colour]))
    s["an_item"] = article(s["item"])
    outcome = rng.choice(["buy", "buy", "leave"])
    ask = ["I'm looking for {an_item}.", "Do you sell {item}s? I need one.", "I need {an_item}, please."]
    colour_q = ["Sure. What colour would you like?", "Of course. Which colour are you after?"]
    colour_a = ["{colour}, if you have it.", "Something in {colour}, please.", "I'd like a {colour} one."]
    offer = ["Here is a {colour} one. It's {price}.", "This {colour} {item} is {price}.",
             "We have this one in {colour}. It costs {price}."]
    if rng.random() < 0.5:
        head = alternate(rng, "B", ["Good afternoon. Can I help you?", "Hello, are you looking for anything?"],
                         ask, colour_q, colour_a, offer)
    else:
        head = alternate(rng, "A", ["Excuse me. " + a for a in ask], colour_q, colour_a, offer)
    if outcome == "buy":
        tail = alternate(rng, "A", ["That's fine. I'll take it.", "Great, I'll take it.", "Perfect. I'll have it."],
                         ["How would you like to pay?", "Will that be cash or card?"],
                         ["{pay}, please.", "{pay}, if that's OK."])
        summaries = [
            "{A} buys a {colour} {item} for {price} and pays {paid}.",
            "{B} helps {A} find a {colour} {item}. It costs {price} and {A} pays {paid}.",
            "{A} wants a {colour} {item} and buys one from {B} for {price}.",
            "{A} buys {an_item} in {colour} for {price}, paying {paid}.",
            "{A} pays {price} {paid} for a {colour} {item} from {B}'s shop.",
            "{A} asks {B} for {an_item} and takes a {colour} one that costs {price}.",
        ]
    else:
        tail = alternate(rng, "A", ["Hmm, {price} is too expensive for me.", "Oh, that's more than I wanted to spend."],
                         ["We also have a cheaper one in {colour2}.", "It's very good quality, though."],
                         ["Thanks, but I'll think about it.", "No, thank you. Maybe another time."])
        summaries = [
            "{A} wants to buy a {colour} {item}, but it costs {price}, which is too expensive for {A}.",
            "{A} thinks the {colour} {item} is too expensive at {price} and decides not to buy it.",
            "{B} shows {A} a {colour} {item} for {price}, but {A} finds it too expensive.",
            "{A} looks for {an_item} but leaves without buying because the {colour} one costs {price}.",
            "{A} doesn't buy the {colour} {item} because {price} is more than {A} wants to pay.",
        ]
    facts = [("How much does the {item} cost?", "{price}"), ("What colour does {A} want?", "{colour}")]
    return Scene("shopping", head + tail, summaries, facts, s)


def restaurant_booking(rng: random.Random, v: Slots) -> Scene:
    """A caller (A) books a table; the wanted time may be full, so another one is offered."""
    time = v("pm_time")
    req = v("table_request")
    s = dict(restaurant=v("restaurant"), n=v("party_size"), day=v("day"), time=time,
             time2=v.distractor("pm_time", exclude=[time]), name=v("surname"), req=req[0], req_s=req[1])
    full = rng.random() < 0.35
    head = alternate(
        rng, "B",
        ["Good evening, {restaurant}. How can I help you?", "Hello, {restaurant}, speaking.",
         "Thank you for calling {restaurant}."],
        ["I'd like to book a table for {n} on {day}, please.", "Hi, can I reserve a table for {n} people on {day}?",
         "Hello. I want to make a reservation for {n} on {day}."],
        ["Certainly. What time?", "Of course. For what time?", "No problem. What time would you like?"],
        ["At {time}, if possible.", "Around {time}.", "{time} would be great."],
    )
    if full:
        mid = alternate(rng, "B", ["I'm sorry, we're fully booked at {time}. Would {time2} suit you?",
                                   "{time} is full, I'm afraid. We have a table at {time2}."],
                        ["OK, {time2} is fine.", "Alright, we'll come at {time2} then."])
        when = "{time2}"
    else:
        mid = []
        when = "{time}"
    tail = alternate(rng, "B", ["Can I have your name, please?", "And the name for the booking?"],
                     ["It's {name}. Could we also have {req}?", "{name}. And could we have {req}, please?"],
                     ["Sure, I've noted that. See you on {day}.", "No problem, Mr. {name}. See you then."])
    if full:
        summaries = [
            "{A} wants a table for {n} at {restaurant} on {day} at {time}, but it is full, so {A} books for {time2}.",
            "{B} can't give {A} a table at {time} on {day}, so {A} books a table for {n} at {time2} instead.",
            "{A} calls {restaurant} to book a table for {n} on {day}. {A} takes {time2} because {time} is full.",
            "{A} books a table for {n} at {restaurant} for {time2} on {day}, since {time} is not available.",
            "{restaurant} is full at {time} on {day}, so {B} offers {A} a table for {n} at {time2}.",
        ]
    else:
        summaries = [
            "{A} books a table for {n} at {restaurant} on {day} at {time} under the name {name}.",
            "{A} calls {restaurant} to reserve a table for {n} people on {day} at {time} and asks for {req_s}.",
            "{B} takes {A}'s booking for {n} people on {day} at {time} and notes a request for {req_s}.",
            "{A} reserves a table for {n} on {day} at {time} at {restaurant}.",
            "{A} books a table at {restaurant} for {n} people at {time} on {day}.",
        ]
    facts = [("How many people is the table for?", "{n}"), ("What name is the booking under?", "{name}"),
             ("What time is the table booked for?", when), ("Which restaurant does {A} call?", "{restaurant}")]
    return Scene("restaurant booking", head + mid + tail, summaries, facts, s)


def doctors_appointment(rng: random.Random, v: Slots) -> Scene:
    """A patient (A) describes a symptom and gets an appointment with a doctor."""
    sym = v("symptom")
    s = dict(symptom=sym[0], symptom_s=sym[1], doctor="Dr. " + v("surname"), day=v("day"), time=v("am_time"),
             duration=v("duration"))
    turns = alternate(
        rng, "B",
        ["Good morning, Park Street Clinic.", "Hello, this is the health centre. How can I help?",
         "Good morning, doctor's surgery."],
        ["Hello, I'd like to make an appointment. I've had {symptom} for {duration}.",
         "Hi. I need to see a doctor. I've got {symptom} and it's been {duration}.",
         "I've had {symptom} for {duration} and it's not getting better."],
        ["I'm sorry to hear that. {doctor} is free on {day} at {time}.",
         "Let me check. {doctor} can see you on {day} at {time}.",
         "We have an opening with {doctor} on {day} at {time}."],
        ["That's fine. I'll take it.", "{day} at {time} is perfect, thank you.", "Great, I'll be there."],
        ["Please bring your insurance card.", "Can I have your date of birth, please?",
         "Please arrive ten minutes early."],
        ["Sure. Thank you very much.", "OK, no problem.", "Of course. Thanks for your help."],
    )
    summaries = [
        "{A} has had {symptom_s} for {duration} and makes an appointment with {doctor} on {day} at {time}.",
        "{A} calls because of {symptom_s}. {B} books {A} in with {doctor} on {day} at {time}.",
        "{B} arranges for {A} to see {doctor} on {day} at {time} about {symptom_s}.",
        "{A} gets an appointment with {doctor} on {day} at {time} for {symptom_s}.",
        "{A} will see {doctor} on {day} at {time} because of {symptom_s} that started {duration} ago.",
        "{A} phones the clinic about {symptom_s}, and {B} gives {A} an appointment on {day} at {time}.",
    ]
    facts = [("Which doctor will {A} see?", "{doctor}"), ("What time is the appointment?", "{time}"),
             ("How long has {A} been ill?", "{duration}")]
    return Scene("doctor's appointment", turns, summaries, facts, s)


def travel_booking(rng: random.Random, v: Slots) -> Scene:
    """A traveller (A) books a flight or train ticket to a city with a class and a seat."""
    s = dict(mode=rng.choice(["flight", "train ticket"]), city=v("city"), day=v("day"), fare=v("fare"),
             trip=rng.choice(["return", "one-way"]), seat=rng.choice(["window seat", "aisle seat"]))
    s["a_seat"] = article(s["seat"])
    turns = alternate(
        rng, "B",
        ["Good morning, City Travel. How can I help?", "Hello, what can I do for you?", "Next, please."],
        ["I'd like to book a {trip} {mode} to {city}.", "I need a {trip} {mode} to {city}, please.",
         "Hi, can I get a {trip} {mode} to {city}?"],
        ["When would you like to travel?", "What day are you leaving?", "Sure. On which day?"],
        ["On {day}, in the morning.", "This {day}, if possible.", "{day}, please."],
        ["There's one at nine. It's {fare}.", "The cheapest one on {day} is {fare}.", "That comes to {fare}."],
        ["That's fine. Can I have {a_seat}?", "OK, I'll take it. I'd like {a_seat}, please.", "Good. I'd like {a_seat}."],
        ["Of course. Here is your ticket.", "Done. Have a nice trip!", "No problem. You're all booked."],
    )
    summaries = [
        "{A} books a {trip} {mode} to {city} on {day} for {fare} and asks for {a_seat}.",
        "{B} helps {A} book a {trip} {mode} to {city}. It leaves on {day} and costs {fare}.",
        "{A} buys a {trip} {mode} to {city} for {day}, which costs {fare}.",
        "{A} will travel to {city} on {day}; the {trip} {mode} costs {fare}.",
        "{B} sells {A} a {trip} {mode} to {city} for {day}. It costs {fare}.",
        "{A} gets a {trip} {mode} to {city} on {day} for {fare} with {a_seat}.",
    ]
    facts = [("Where is {A} going?", "{city}"), ("How much does the ticket cost?", "{fare}"),
             ("What day does {A} travel?", "{day}")]
    return Scene("travel booking", turns, summaries, facts, s)


def job_interview(rng: random.Random, v: Slots) -> Scene:
    """An interviewer (A) asks a candidate (B) about experience and start date."""
    s = dict(position=v("position"), company=v("company"), years=v("years"), day=v("day"),
             start=rng.choice(["next month", "in two weeks", "immediately", "in September"]),
             prev=v.distractor("company"))
    turns = alternate(
        rng, "A",
        ["Please sit down. So you are applying for the {position} position at {company}.",
         "Thanks for coming. You're here about the {position} job at {company}, right?",
         "Welcome to {company}. Tell me why you want to be our new {position}."],
        ["Yes. I've wanted to work here for a long time.", "That's right. I think I'd be a good fit.",
         "I've always liked the work your company does."],
        ["How much experience do you have?", "Tell me about your experience.", "Have you done this job before?"],
        ["I've worked as a {position} for {years} years.", "I have {years} years of experience as a {position}.",
         "I was a {position} for {years} years at another firm."],
        ["When could you start?", "If we offer you the job, when can you start?"],
        ["I could start {start}.", "I can start {start}."],
        ["Good. We'll let you know by {day}.", "Thank you. You will hear from us by {day}."],
    )
    summaries = [
        "{B} has an interview for the {position} job at {company}. {B} has {years} years of experience and can start {start}.",
        "{A} interviews {B} for the {position} position. {B} can start {start} and will hear back by {day}.",
        "{B} tells {A} about {years} years of work as a {position}. {A} will give an answer by {day}.",
        "In the interview for the {position} position at {company}, {B} says {B} can start {start}.",
        "{A} interviews {B}, who has been a {position} for {years} years, for a job at {company}.",
        "{B} applies to be a {position} at {company} and can start {start}. {A} will reply by {day}.",
    ]
    facts = [("Which job is {B} applying for?", "{position}"), ("How many years of experience does {B} have?",
             "{years}"), ("When can {B} start?", "{start}"), ("By when will {B} hear back?", "{day}")]
    return Scene("job interview", turns, summaries, facts, s)


def borrowing(rng: random.Random, v: Slots) -> Scene:
    """A asks to borrow B's thing; B lends it until a day or refuses with a reason."""
    thing, purpose, purpose_s = v("loan")
    reason = v("reason")
    s = dict(thing=thing, purpose=purpose, purpose_s=purpose_s, day=v("day"), reason=reason[0],
             Reason=cap(reason[0]), why=reason[1].replace("{X}", "{B}"))
    opener = rng.choice([("Can I ask you a favour?", "Sure, what is it?"),
                         ("Could you do me a favour?", "Of course. What do you need?"),
                         ("Are you using your {thing} this week?", "I don't think so. Why?")])
    ask = alternate(rng, "A", [opener[0]], [opener[1]],
                    ["Could I borrow your {thing} {purpose}?", "I need your {thing} {purpose}. Can I borrow it?",
                     "Would you lend me your {thing} {purpose}?"])
    if rng.random() < 0.7:
        tail = alternate(rng, "B", ["Yes, but I need it back by {day}.", "OK, just bring it back by {day}.",
                                    "Sure. Can you return it by {day}?"],
                         ["No problem, you'll have it back by {day}.", "Of course. Thanks a lot!",
                          "Thanks, I'll return it by {day}."])
        summaries = [
            "{A} borrows {B}'s {thing} {purpose_s} and will give it back by {day}.",
            "{B} lends {A} the {thing} {purpose_s} but needs it back by {day}.",
            "{A} asks to borrow {B}'s {thing}. {B} agrees if {A} returns it by {day}.",
            "{B} lets {A} borrow the {thing} {purpose_s} until {day}.",
            "{A} needs a {thing} {purpose_s}, so {B} lends {A} one until {day}.",
        ]
        facts = [("By when must the {thing} be returned?", "{day}")]
    else:
        tail = alternate(rng, "B", ["Sorry, I need it myself. {Reason}, you see.",
                                    "I'm afraid not. I need it because {reason}."],
                         ["Never mind. I'll ask someone else.", "OK, I understand."])
        summaries = [
            "{A} asks to borrow {B}'s {thing} {purpose_s}, but {B} needs it because {why}.",
            "{B} can't lend {A} the {thing} because {why}.",
            "{A} wants {B}'s {thing} {purpose_s}, but {B} says no because {why}.",
            "{B} refuses to lend the {thing} to {A} because {why}.",
            "{A} can't borrow the {thing} from {B} because {why}.",
        ]
        facts = []
    facts += [("What does {A} want to borrow?", "{thing}")]
    return Scene("borrowing", ask + tail, summaries, facts, s)


def tech_support(rng: random.Random, v: Slots) -> Scene:
    """A customer (A) reports a device problem; the fix works or a technician visit is booked."""
    fix = v("fix")
    s = dict(device=v("device"), problem=v("problem"), fix=fix[0], fix_s=fix[1], day=v("day"),
             ticket=str(rng.randrange(1000, 9999)))
    head = alternate(
        rng, "B",
        ["Thank you for calling tech support. What seems to be the problem?", "Help desk, how can I help you?",
         "Customer support, good morning."],
        ["Hi. My {device} {problem}.", "Hello, I have a problem. My {device} {problem}.",
         "My {device} {problem} and I don't know what to do."],
        ["Let's try something. Please {fix}.", "OK. First, could you {fix}?", "I see. Try to {fix}, please."],
    )
    if rng.random() < 0.6:
        tail = alternate(rng, "A", ["OK, just a moment... Yes, it works now!", "Done. Oh, it's working again."],
                         ["Great. Is there anything else?", "Glad to hear it."],
                         ["No, that's all. Thanks a lot.", "No, thank you for your help."])
        summaries = [
            "{A}'s {device} {problem}. {B} tells {A} to {fix_s}, and that solves the problem.",
            "{A} calls because the {device} {problem}. After {A} follows {B}'s advice to {fix_s}, it works.",
            "{B} helps {A} fix a {device} that {problem} by telling {A} to {fix_s}.",
            "{A}'s {device} {problem}, but it works again after {A} tries to {fix_s} as {B} suggests.",
            "{B} solves {A}'s problem with the {device} by telling {A} to {fix_s}.",
        ]
    else:
        tail = alternate(rng, "A", ["I did that, but it still doesn't work.", "Hmm, nothing has changed."],
                         ["Then we'll send a technician on {day}. Your ticket number is {ticket}.",
                          "A technician will visit you on {day}. The reference number is {ticket}."],
                         ["Thank you. I'll be at home.", "OK, {day} is fine."])
        summaries = [
            "{A}'s {device} {problem}. Trying to {fix_s} doesn't help, so {B} books a technician for {day}.",
            "{B}'s advice to {fix_s} doesn't fix {A}'s {device}, so a technician will come on {day}.",
            "{A} reports that the {device} {problem}. A technician will visit on {day}; the ticket is {ticket}.",
            "{A}'s {device} {problem} even after {A} tries to {fix_s}. {B} sends a technician on {day}.",
            "{B} arranges a technician visit on {day} for {A}'s {device}, which {problem}.",
        ]
        s["has_ticket"] = True
    facts = [("What device does {A} have a problem with?", "{device}"), ("What does {B} tell {A} to do?", "{fix}")]
    if s.get("has_ticket"):
        facts += [("What is the ticket number?", "{ticket}"), ("When will the technician come?", "{day}")]
    return Scene("tech support", head + tail, summaries, facts, s)


def renting_a_flat(rng: random.Random, v: Slots) -> Scene:
    """A (the caller) asks about a flat: rent, bills and a viewing time."""
    s = dict(flat=v("flat"), area=v("area"), rent=v("rent"), day=v("day"), time=v("pm_time"),
             bills=rng.choice(["included", "not included"]))
    turns = alternate(
        rng, "A",
        ["Hello, I'm calling about the {flat} {area}.", "Hi, is the {flat} {area} still available?",
         "Good morning. I saw your advert for a {flat} {area}."],
        ["Yes, it's still available.", "Yes, it is. Are you interested?", "It is. What would you like to know?"],
        ["How much is the rent?", "What's the monthly rent?", "Could you tell me the rent?"],
        ["It's {rent} a month.", "The rent is {rent} per month.", "{rent} a month."],
        ["Are bills included?", "Does that include bills?", "And what about the bills?"],
        ["Bills are {bills}.", "No, bills are extra." if s["bills"] == "not included" else "Yes, bills are included."],
        ["Could I come and see it?", "Can I arrange a viewing?", "When can I have a look at it?"],
        ["How about {day} at {time}?", "You can come on {day} at {time}.", "I'm free on {day} at {time}."],
        ["{day} at {time} is fine. See you then.", "Perfect, see you on {day}."],
    )
    summaries = [
        "{A} calls {B} about a {flat} {area}. The rent is {rent} a month and {A} will see it on {day} at {time}.",
        "{A} is interested in the {flat} {area}, which costs {rent} a month, bills {bills}. The viewing is on {day}.",
        "{B} tells {A} that the {flat} costs {rent} a month and arranges a viewing on {day} at {time}.",
        "{A} will view the {flat} {area} on {day} at {time}; it costs {rent} a month.",
        "{A} asks about the rent of a {flat} {area}. It is {rent} a month, and {A} will see it on {day}.",
        "{A} and {B} arrange a viewing of the {flat} {area} on {day} at {time}. The rent is {rent}.",
    ]
    facts = [("How much is the rent?", "{rent}"), ("When is the viewing?", "{day} at {time}"),
             ("Where is the flat?", "{area}")]
    return Scene("renting a flat", turns, summaries, facts, s)


def lost_property(rng: random.Random, v: Slots) -> Scene:
    """A lost something; B (lost and found) has it or takes a phone number."""
    s = dict(lost=v("lost"), colour=v("colour"), place=v("lost_place"),
             when=rng.choice(["this morning", "yesterday", "last night", "on Friday"]),
             phone="555-0" + str(rng.randrange(100, 999)), name=v("surname"))
    head = alternate(
        rng, "A",
        ["Excuse me, is this the lost and found office?", "Hello, I've lost something. Can you help me?",
         "Hi. I think I left something {place} {when}."],
        ["Yes. What have you lost?", "I'll try. What is it?", "Sure. What did you lose?"],
        ["A {colour} {lost}. I lost it {place} {when}.", "My {lost}. It's {colour}. I left it {place} {when}.",
         "I lost my {colour} {lost} {place} {when}."],
    )
    if rng.random() < 0.5:
        tail = alternate(rng, "B", ["Let me check... Is this it?", "One moment. We have a {colour} {lost} here."],
                         ["Yes, that's mine! Thank you so much.", "That's it! What a relief."],
                         ["Please sign this form, Mr. {name}.", "Can you show me some ID, please?"])
        summaries = [
            "{A} lost a {colour} {lost} {place} {when}, and {B} finds it in the lost and found office.",
            "{A} comes to get a {colour} {lost} that {A} left {place}. {B} has it.",
            "{B} gives {A} back the {colour} {lost} that {A} lost {place} {when}.",
            "{A} gets back the {colour} {lost} that {A} left {place}.",
            "{A} asks {B} about a {colour} {lost} lost {place} {when}, and {B} has it.",
        ]
    else:
        tail = alternate(rng, "B", ["Nobody has brought it in yet. Can I have your phone number?",
                                    "I'm sorry, it's not here. Leave me your number."],
                         ["It's {phone}.", "Sure, it's {phone}. My name is {name}."],
                         ["We'll call you if it turns up.", "OK, we'll let you know if we find it."])
        summaries = [
            "{A} lost a {colour} {lost} {place} {when}. It hasn't been found, so {A} leaves a phone number.",
            "{B} doesn't have {A}'s {colour} {lost} yet and will call {A} at {phone} if it turns up.",
            "{A} reports a lost {colour} {lost}. {B} takes {A}'s number, {phone}, and will call.",
            "{A} left a {colour} {lost} {place} {when}. {B} will phone {A} if someone finds it.",
            "{A}'s {colour} {lost} is still missing. {B} notes {A}'s number, {phone}.",
        ]
        s["has_phone"] = True
    facts = [("What did {A} lose?", "{lost}"), ("Where did {A} lose it?", "{place}"),
             ("What is {A}'s name?", "{name}"), ("What colour is it?", "{colour}")]
    if s.get("has_phone"):
        facts.append(("What is {A}'s phone number?", "{phone}"))
    return Scene("lost property", head + tail, summaries, facts, s)


def returning_a_product(rng: random.Random, v: Slots) -> Scene:
    """A returns a faulty product and gets a refund or an exchange."""
    defect = v("defect")
    s = dict(product=v("product"), defect=defect[0], defect_s=defect[1], when=v("when_bought"),
             remedy=rng.choice(["refund", "exchange"]))
    s["a_product"], s["When"] = article(s["product"]), cap(s["when"])
    head = alternate(
        rng, "B",
        ["Hello. How can I help you?", "Good morning. What can I do for you?", "Hi, do you need any help?"],
        ["I'd like to return this {product}. It {defect}.", "I bought this {product} {when}, but it {defect}.",
         "Hi. This {product} {defect}. I want to return it."],
        ["I'm sorry about that. When did you buy it?", "Oh dear. When did you buy it? Do you have the receipt?"],
        ["{When}. Here's the receipt.", "I bought it {when}. Here is my receipt."],
    )
    if s["remedy"] == "refund":
        tail = alternate(rng, "B", ["Would you like a refund or a new one?", "We can give you your money back."],
                         ["A refund, please.", "I'd prefer my money back, please."],
                         ["No problem. The money will be back on your card in three days."])
        summaries = [
            "{A} returns {a_product} bought {when} because it {defect_s}, and {B} gives {A} a refund.",
            "{A} gets a refund for {a_product} that {defect_s}.",
            "{B} refunds {A} for {a_product} that {A} bought {when} because it {defect_s}.",
            "{A} brings back {a_product} that {defect_s} and gets {A}'s money back.",
            "{A} bought {a_product} {when}, but it {defect_s}, so {A} asks for a refund.",
        ]
    else:
        tail = alternate(rng, "B", ["Would you like a refund or a new one?", "We can exchange it for you."],
                         ["I'd like a new one, please.", "An exchange, please."],
                         ["Here you are. Sorry for the trouble."])
        summaries = [
            "{A} returns {a_product} bought {when} because it {defect_s}, and {B} exchanges it for a new one.",
            "{A} exchanges {a_product} that {defect_s} for a new one.",
            "{B} gives {A} a new {product} because the old one {defect_s}.",
            "{A} bought {a_product} {when}, but it {defect_s}, so {B} gives {A} a new one.",
            "{A} returns {a_product} that {defect_s} and gets a new one instead of a refund.",
        ]
    facts = [("What does {A} return?", "{product}"), ("When did {A} buy it?", "{when}")]
    return Scene("returning a product", head + tail, summaries, facts, s)


def asking_the_way(rng: random.Random, v: Slots) -> Scene:
    """A stranger (A) asks the way; B gives directions or suggests a bus."""
    s = dict(dest=v("destination"), directions=v("directions"), landmark=v("landmark"), minutes=v("minutes"),
             bus=v("bus"))
    head = alternate(
        rng, "A",
        ["Excuse me, how do I get to {dest}?", "Sorry to bother you, where is {dest}?",
         "Excuse me, could you tell me the way to {dest}?"],
    )
    if rng.random() < 0.6:
        tail = alternate(rng, "B", ["Sure. {Directions}. It's {landmark}.", "Just {directions}. You'll see it {landmark}."],
                         ["Is it far?", "How long does it take?", "Can I walk there?"],
                         ["No, it's about {minutes} on foot.", "It's only {minutes} from here.", "About {minutes} walking."],
                         ["Thank you very much.", "Thanks for your help!"])
        summaries = [
            "{A} asks {B} the way to {dest}. {B} says it's {landmark}, about {minutes} on foot.",
            "{B} tells {A} to {directions} to get to {dest}, which is {landmark}.",
            "{A} wants to go to {dest}. It's {minutes} away on foot, {landmark}.",
            "{B} gives {A} directions to {dest}, which is {landmark} and {minutes} away.",
            "{A} asks for directions to {dest}. It's about {minutes} from there, {landmark}.",
        ]
        facts = [("How long does it take to walk?", "{minutes}")]
    else:
        tail = alternate(rng, "B", ["It's quite far. You'd better take the number {bus} bus.",
                                    "It's too far to walk. Take bus number {bus}."],
                         ["Where is the bus stop?", "Where can I catch it?"],
                         ["It's just over there, {landmark}.", "The stop is {landmark}."],
                         ["Thanks a lot!", "Great, thank you."])
        summaries = [
            "{A} asks how to get to {dest}. {B} says it's far and tells {A} to take the number {bus} bus.",
            "{B} tells {A} to take bus number {bus} to {dest}; the stop is {landmark}.",
            "{A} wants to go to {dest}, and {B} recommends the number {bus} bus.",
            "{B} says {dest} is too far to walk, so {A} should take bus {bus} from the stop {landmark}.",
            "{A} needs to get to {dest}. {B} suggests the number {bus} bus.",
        ]
        facts = [("Which bus should {A} take?", "{bus}")]
    s["Directions"] = cap(s["directions"])
    facts += [("Where does {A} want to go?", "{dest}")]
    return Scene("asking the way", head + tail, summaries, facts, s)


def hotel_check_in(rng: random.Random, v: Slots) -> Scene:
    """A guest checks in: the name of the booking, nights, room and breakfast time."""
    s = dict(name=v("surname"), nights=v("nights"), room=v("room"),
             breakfast=rng.choice(["from 7 to 10", "from 6:30 to 9:30", "from 7:30 to 10:30"]))
    turns = alternate(
        rng, "A",
        ["Good evening. Welcome to the Park Hotel.", "Hello, welcome. Are you checking in?",
         "Good afternoon. How can I help you?"],
        ["Hi, I have a reservation under the name {name}.", "Yes. The booking is under {name}."],
        ["Let me see... Yes, {nights} nights in a double room.", "Here it is. A double room for {nights} nights."],
        ["That's right.", "Yes, exactly.", "Correct."],
        ["You're in room {room}. Here is your key.", "Your room is {room}, on the top floor."],
        ["Thanks. When is breakfast?", "What time is breakfast served?"],
        ["Breakfast is {breakfast} in the restaurant.", "It's served {breakfast}."],
    )
    summaries = [
        "{B} checks in at the hotel under the name {name} for {nights} nights and gets room {room}.",
        "{A} checks {B} into room {room} for {nights} nights and says breakfast is {breakfast}.",
        "{B} has a booking for {nights} nights under {name}. {B} is in room {room}.",
        "{A} welcomes {B}, who has booked a room for {nights} nights. Breakfast is {breakfast}.",
        "{B} checks in for {nights} nights and gets the key to room {room}.",
    ]
    facts = [("What is {B}'s room number?", "{room}"), ("How many nights will {B} stay?", "{nights}"),
             ("When is breakfast served?", "{breakfast}")]
    return Scene("hotel check-in", turns, summaries, facts, s)


def buying_a_gift(rng: random.Random, v: Slots) -> Scene:
    """A and B choose a present for a friend and decide where to buy it."""
    gift = v("gift")
    s = dict(friend=v("name"), occasion=v("occasion"), gift=gift, shop=v("shop"),
             rejected=v.distractor("gift", exclude=[gift]))
    turns = alternate(
        rng, "A",
        ["What should we get {friend} for the {occasion}?", "{friend}'s {occasion} is coming. Any gift ideas?",
         "We still need a present for {friend}'s {occasion}."],
        ["How about {rejected}?", "Maybe {rejected}?", "What about {rejected}?"],
        ["Hmm, I think {friend} already has one.", "No, that's a bit boring."],
        ["Then let's get {gift}.", "OK, what about {gift}? {friend} would love that.", "Then {gift}, maybe?"],
        ["Good idea. We can buy it at {shop}.", "Great. Let's go to {shop} tomorrow.", "Perfect. They sell those at {shop}."],
        ["And we'll split the cost.", "Sounds good. Let's share the cost."],
    )
    summaries = [
        "{A} and {B} decide to buy {gift} for {friend}'s {occasion} at {shop} and share the cost.",
        "For {friend}'s {occasion}, {A} and {B} choose {gift} and will buy it at {shop}.",
        "{A} and {B} want a present for {friend}. They choose {gift} from {shop}.",
        "{A} and {B} will get {friend} {gift} for the {occasion} and split the cost.",
        "{A} and {B} talk about a gift for {friend}'s {occasion} and decide on {gift}.",
    ]
    facts = [("Who is the present for?", "{friend}"), ("What gift do they choose?", "{gift}"),
             ("Where will they buy it?", "{shop}")]
    return Scene("buying a gift", turns, summaries, facts, s)


FAMILIES: dict[str, Callable[[random.Random, Slots], Scene]] = {
    "invitation": invitation,
    "shopping": shopping,
    "restaurant booking": restaurant_booking,
    "doctor's appointment": doctors_appointment,
    "travel booking": travel_booking,
    "job interview": job_interview,
    "borrowing": borrowing,
    "tech support": tech_support,
    "renting a flat": renting_a_flat,
    "lost property": lost_property,
    "returning a product": returning_a_product,
    "asking the way": asking_the_way,
    "hotel check-in": hotel_check_in,
    "buying a gift": buying_a_gift,
}
TOPICS = list(FAMILIES)

# ---------------------------------------------------------------------------------------------
# Small talk and distractors, rendering
# ---------------------------------------------------------------------------------------------

#: Friends chat before and after the point; strangers only ask to repeat or say goodbye.
FRIENDS = {"invitation", "borrowing", "buying a gift"}

#: Exchanges {where: start, mid (any boundary) or end; audience: friends or all; openers; replies}.
SMALL_TALK: list[dict] = PHRASING["small_talk"]


def insert_small_talk(rng: random.Random, v: Slots, turns: list[tuple[str, str]], friends: bool) -> None:
    """Insert one small-talk exchange that fits the speakers, keeping the turns alternating."""
    talk = rng.choice([c for c in SMALL_TALK if friends or c["audience"] == "all"])
    pos = {"start": 0, "end": len(turns), "mid": rng.randrange(1, len(turns))}[talk["where"]]
    speaker = turns[pos][0] if pos < len(turns) else ("B" if turns[-1][0] == "A" else "A")
    listener = "B" if speaker == "A" else "A"
    values = dict(name=v.distractor("name"), venue=v.distractor("venue"), restaurant=v.distractor("restaurant"),
                  day=v.distractor("day"), city=v.distractor("city"), time=v.distractor("pm_time"))
    turns[pos:pos] = [(speaker, rng.choice(talk["openers"]).format(**values)),
                      (listener, rng.choice(talk["replies"]).format(**values))]


def fill(text: str, slots: dict, roles: dict) -> str:
    """Fill ``{slot}`` fields, then replace the ``{A}``/``{B}`` role markers with speaker tags."""
    text = text.format(**slots, A="{A}", B="{B}")
    return text.replace("{A}", roles["A"]).replace("{B}", roles["B"])


def add_small_talk(rng: random.Random, v: Slots, scene: Scene) -> list[tuple[str, str]]:
    """The scene's turns with 0-2 small-talk exchanges mixed in (at most 10 turns in all)."""
    turns = [(role, text.format(**scene.slots)) for role, text in scene.turns]
    for _ in range(rng.choice([0, 1, 1, 2])):
        if len(turns) + 2 <= 10:
            insert_small_talk(rng, v, turns, scene.topic in FRIENDS)
    return turns


@dataclass
class Dialogue:
    """A rendered dialogue with all its summaries and QA facts."""

    dialogue: str
    topic: str
    summaries: list[str]
    facts: list[tuple[str, str]]
    summary_facts: list[str] = field(default_factory=list)


def summary_facts(slots: dict, summaries: list[str], roles: dict) -> list[str]:
    """The facts a correct summary must carry: the scene's slot values that *every* one of its summary
    phrasings states (as whole normalized tokens, :func:`utils.evaluation.contains`), in slot order.

    Values as the summaries write them (``{B} has to work late`` with its speaker tag filled in); a number
    takes the word that follows it in every phrasing (``five nights``); repeats and values inside a longer
    fact's tokens are kept once (the shorter). Reads the drawn slots only, so the
    random draws (and the dialogues) are the same with or without it.
    """
    tokens = [normalize(summary) for summary in summaries]
    found: dict[str, str] = {}
    for value in slots.values():
        if not isinstance(value, str):
            continue
        text = fill(value, slots, roles)
        key = " ".join(normalize(text))
        if key and key not in found and all(contains(t, key.split()) for t in tokens):
            unit = _shared_unit(key.split(), tokens)
            found[f"{key} {unit}" if unit else key] = f"{text} {unit}" if unit else text
    return [text for key, text in found.items()
            if not any(other != key and contains(key.split(), other.split()) for other in found)]


def _shared_unit(value: list[str], summaries: list[list[str]]) -> str | None:
    """For a number (``five``): the word that follows it in every summary (``nights``), if they all agree."""
    if len(value) != 1 or not is_number(value[0]):
        return None
    following = set()
    for tokens in summaries:
        at = tokens.index(value[0])
        following.add(tokens[at + 1] if at + 1 < len(tokens) else None)
    unit = following.pop() if len(following) == 1 else None
    return unit if unit and unit.isalpha() else None


def make_dialogue(rng: random.Random, topic: str, held_out: bool, named: bool = False) -> Dialogue:
    """Draw one dialogue of a family. With ``held_out`` (the target test split) it may contain held-out values
    (:class:`Slots`); without, it never does.

    Speakers are DialogSum's ``#Person1#``/``#Person2#`` tags, or with ``named`` two first names (the
    probe tasks': see :func:`probe_examples`).
    """
    while True:
        v = Slots(rng, held_out)
        scene = FAMILIES[topic](rng, v)
        turns = add_small_talk(rng, v, scene)
        first, second = rng.sample(CHAT_NAMES, 2) if named else ("#Person1#", "#Person2#")
        roles = {"A": first, "B": second} if turns[0][0] == "A" else {"A": second, "B": first}
        dialogue = "\n".join(f"{roles[role]}: {cap(text)}" for role, text in turns)
        if held_out or not has_held_out_value(dialogue):
            break
    summaries = [cap(fill(t, scene.slots, roles)) for t in scene.summaries]
    facts = [(fill(q, scene.slots, roles), fill(a, scene.slots, roles)) for q, a in scene.facts]
    facts = [(q, a) for q, a in facts if a in dialogue]
    return Dialogue(dialogue, scene.topic, summaries, facts, summary_facts(scene.slots, summaries, roles))


def unique_dialogues(rng: random.Random, n: int, held_out: bool, taken: set[str], named: bool = False
                     ) -> list[Dialogue]:
    """``n`` dialogues with balanced topics whose text is not in ``taken`` (which is updated)."""
    out = []
    while len(out) < n:
        topic = TOPICS[len(out) % len(TOPICS)] if rng.random() < 0.7 else rng.choice(TOPICS)
        d = make_dialogue(rng, topic, held_out, named)
        if d.dialogue not in taken:
            taken.add(d.dialogue)
            out.append(d)
    return out


# ---------------------------------------------------------------------------------------------
# Background text: the words of the world, for the tiny model's pre-training (not a data set)
# ---------------------------------------------------------------------------------------------

#: One plain sentence per slot pool that uses a value as dialogues do.
BACKGROUND_FRAMES: dict[str, str] = PHRASING["background_frames"]


def background_texts(n: int = 3000, seed: int = DEFAULT_SEED) -> list[str]:
    """``n`` short notes of 3-5 plain sentences that use the slot pools' values and made-up ones.

    The tiny model's stand-in for the web text T5 was pre-trained on: it gives the tokenizer and the model
    the words of the world outside any task. Values are drawn as training dialogues draw them
    (:class:`Slots`), so the notes hold no held-out value, and they are not written to ``data/``.
    """
    rng = random.Random(f"{seed}-background")
    v = Slots(rng, held_out=False)
    keys = sorted(BACKGROUND_FRAMES)
    notes = []
    for _ in range(n):
        sentences = []
        for key in rng.sample(keys, rng.randint(3, 5)):
            value = spoken(v(key))
            sentences.append(cap(BACKGROUND_FRAMES[key].format(v=value.replace("{X}", rng.choice(CHAT_NAMES)))))
        notes.append(" ".join(sentences))
    return notes


# ---------------------------------------------------------------------------------------------
# App reviews (sentiment and title probes)
# ---------------------------------------------------------------------------------------------

APPS: dict[str, dict[str, list[str]]] = PHRASING["apps"]
#: Review points: aspect -> praise and complaint sentences and their titles.
#: A mixed review never praises and criticises the same aspect.
POINTS: dict[str, dict[str, list[str]]] = PHRASING["points"]
INTROS: list[str] = PHRASING["intros"]
VERDICTS: dict[str, list[str]] = PHRASING["verdicts"]
TURNS: dict[str, list[str]] = PHRASING["turns"]
ASIDES: dict[str, str] = PHRASING["asides"]


def point(rng: random.Random, aspect: str, positive: bool) -> tuple[str, str]:
    """One review sentence about ``aspect`` and its title.

    The title follows from the sentence (the i-th phrasing has the i-th title), so a model can learn it
    from the review. (The second draw is kept so that the reviews stay what they were.)
    """
    table = POINTS[aspect]
    sentences, titles = ((table["praise"], table["praise_titles"]) if positive
                         else (table["complaints"], table["complaint_titles"]))
    sentence = rng.choice(sentences)
    rng.choice(titles)
    return sentence, titles[sentences.index(sentence) % len(titles)]


def make_review(rng: random.Random) -> tuple[str, str, str]:
    """One app review: (text, label, title).

    The title names the review's main point, in the words its sentence implies (:func:`point`), so it can
    be learned from the review. About a third of the reviews are mixed: they also make a point for the other
    side, and the verdict decides the label.
    """
    category = rng.choice(list(APPS))
    app = APPS[category]
    slots = dict(app=rng.choice(app["names"]), category=category, feature=rng.choice(app["features"]))
    label = rng.choice(["negative", "positive"])
    positive = label == "positive"
    main, other = rng.sample(list(POINTS), 2)
    sentence, title = point(rng, main, positive)
    body = [sentence]
    if rng.random() < 0.35:  # mixed: a point for the other side, then a turn back to the verdict
        contrary = point(rng, other, not positive)[0]
        body = [contrary, rng.choice(TURNS[label]), sentence] if rng.random() < 0.5 else \
            [sentence, ASIDES[label] + contrary[0].lower() + contrary[1:]]
    elif rng.random() < 0.6:
        body.append(point(rng, other, positive)[0])
    intro = [rng.choice(INTROS)] if rng.random() < 0.7 else []
    verdict = [rng.choice(VERDICTS[label])] if rng.random() < 0.8 else []
    text = " ".join(intro + body + verdict).format(**slots)
    if rng.random() < 0.25:  # the draws of a generic title, which no model could derive from the review,
        rng.randrange(4)  # are kept (unused) so that the reviews stay byte for byte what they were
    return text, label, cap(title.format(**slots))


# ---------------------------------------------------------------------------------------------
# Chats: a held-in summarization task in SAMSum's style (for the tiny model's instruction tuning)
# ---------------------------------------------------------------------------------------------

#: Chats per split. Only the train split is used to build the tiny model; the others are for scoring.
CHAT_SIZES = {"train": 3000, "validation": 100, "test": 200}
#: Friends chat about plans, loans, gifts, shopping, a table for dinner and the way somewhere: six of the
#: target's fourteen scenario families, as SAMSum's chats overlap DialogSum's everyday situations only in part.
CHAT_TOPICS = ["invitation", "borrowing", "buying a gift", "shopping", "restaurant booking", "asking the way"]
#: Informal spellings of a chat message (each applied to a message with probability 1/2).
CHAT_SWAPS: list[dict[str, str]] = PHRASING["chat_swaps"]
CHAT_ENDINGS: list[str] = PHRASING["chat_endings"]
#: Share of chats written in informal messages; the others keep the scenes' plain sentences. SAMSum has
#: both, and the tiny model needs both: with only informal chats in its mixture, it tied plain dialogues
#: to the probe tasks and answered "Summarize ..." on a plain dialogue with a topic label (issue 14's trials).
CHAT_INFORMAL_SHARE = 0.5


def chat_message(rng: random.Random, text: str) -> str:
    """A turn written as a chat message: informal spellings, often no capital or full stop, now and then
    an emoticon."""
    for swap in CHAT_SWAPS:
        if rng.random() < 0.5:
            text = re.sub(swap["pattern"], swap["informal"], text)
    if rng.random() < 0.5 and not text.startswith(("I ", "I'")):
        text = text[:1].lower() + text[1:]
    if rng.random() < 0.6 and text.endswith("."):
        text = text[:-1]
    if rng.random() < 0.15:
        text += rng.choice(CHAT_ENDINGS)
    return text


def first_sentence(text: str) -> str:
    """The first sentence of ``text`` (up to the first ``. ``)."""
    return text.split(". ", 1)[0].rstrip(".") + "."


def make_chat(rng: random.Random) -> dict:
    """One SAMSum-style chat: first names as speakers, messages informal in a :data:`CHAT_INFORMAL_SHARE` of
    the chats, and a short summary in the third person that names them (the first sentence of one of the
    family's summary phrasings)."""
    topic = rng.choice(CHAT_TOPICS)
    v = Slots(rng, held_out=False)
    scene = FAMILIES[topic](rng, v)
    turns = add_small_talk(rng, v, scene)
    a, b = rng.sample(CHAT_NAMES, 2)
    roles = {"A": a, "B": b}
    messages = [cap(fill(text, scene.slots, roles)) for _, text in turns]
    if rng.random() < CHAT_INFORMAL_SHARE:
        messages = [chat_message(rng, message) for message in messages]
    dialogue = "\n".join(f"{roles[role]}: {message}" for (role, _), message in zip(turns, messages, strict=True))
    summary = first_sentence(cap(fill(rng.choice(scene.summaries), scene.slots, roles)))
    return {"dialogue": dialogue, "summary": summary, "topic": topic}


def chat_rows(seed: int = DEFAULT_SEED, taken: set[str] | None = None) -> dict[str, list[dict]]:
    """The chats per split, in SAMSum's schema (``id, dialogue, summary``) plus the scenario ``topic``."""
    taken = set() if taken is None else taken
    rows: dict[str, list[dict]] = {}
    for split, n in CHAT_SIZES.items():
        rng = random.Random(f"{seed}-chats-{split}")
        rows[split] = []
        while len(rows[split]) < n:
            chat = make_chat(rng)
            if chat["dialogue"] not in taken:
                taken.add(chat["dialogue"])
                rows[split].append({"id": f"chats_{split}_{len(rows[split])}", **chat})
    return rows


# ---------------------------------------------------------------------------------------------
# Splits and files
# ---------------------------------------------------------------------------------------------


def target_rows(seed: int = DEFAULT_SEED) -> dict[str, list[dict]]:
    """The target task's rows per split, in the DialogSum schema (test: 3 reference rows each), each with the
    dialogue's ``facts`` (:func:`summary_facts`; the test split's rows of one dialogue share them)."""
    taken: set[str] = set()
    rows: dict[str, list[dict]] = {}
    for split, n in TARGET_SIZES.items():
        rng = random.Random(f"{seed}-target-{split}")
        dialogues = unique_dialogues(rng, n, held_out=(split == "test"), taken=taken)
        if split == "test":
            rows[split] = [
                {"id": f"test_{i}_{k + 1}", "dialogue": d.dialogue, "summary": summary, "topic": d.topic,
                 "facts": d.summary_facts}
                for i, d in enumerate(dialogues)
                for k, summary in enumerate(rng.sample(d.summaries, N_REFERENCES))
            ]
        else:
            rows[split] = [{"id": f"{split}_{i}", "dialogue": d.dialogue, "summary": rng.choice(d.summaries),
                            "topic": d.topic, "facts": d.summary_facts} for i, d in enumerate(dialogues)]
    return rows


def probe_rows(seed: int = DEFAULT_SEED, taken: set[str] | None = None) -> dict[str, dict[str, list[dict]]]:
    """Rows of every probe task per split. Dialogues never repeat the target task's (``taken``)."""
    taken = set() if taken is None else taken
    out: dict[str, dict[str, list[dict]]] = {}
    for probe in PROBES:
        out[probe] = {}
        for split, n in PROBE_SIZES.items():
            rng = random.Random(f"{seed}-{probe}-{split}")
            out[probe][split] = [dict(id=f"{probe}_{split}_{i}", **row)
                                 for i, row in enumerate(probe_examples(probe, rng, n, taken))]
    return out


def probe_examples(probe: str, rng: random.Random, n: int, taken: set[str]) -> list[dict]:
    """``n`` examples of one probe task (without ids); texts already in ``taken`` are skipped.

    The qa and topic probes' dialogues name their speakers (``Karen: ...``). DialogSum's ``#Person1#`` tags
    stay the target's own, as FLAN-T5 met them first in DialogSum: with tagged probe dialogues, the only
    tagged dialogues in the tiny model's instruction mixture asked for a label or a span, and the model
    answered the target's "Summarize ..." with a label (issue 14's trials).
    """
    if probe in ("qa", "topic"):
        dialogues = unique_dialogues(rng, n, held_out=False, taken=taken, named=True)
        if probe == "topic":
            return [{"text": d.dialogue, "label": d.topic, "options": TOPICS} for d in dialogues]
        rows = []
        for d in dialogues:
            while not d.facts:
                d = unique_dialogues(rng, 1, held_out=False, taken=taken, named=True)[0]
            question, answer = rng.choice(d.facts)
            rows.append({"context": d.dialogue, "question": question, "answer": answer})
        return rows
    rows = []
    while len(rows) < n:
        text, label, title = make_review(rng)
        if text in taken:
            continue
        taken.add(text)
        if probe == "sentiment":
            rows.append({"text": text, "label": label, "options": ["negative", "positive"]})
        else:
            rows.append({"text": text, "title": title})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> None:
    """One JSON object per line, UTF-8, ``\\n`` line endings."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def generate(out_dir: Path = DATA_DIR, seed: int = DEFAULT_SEED) -> list[Path]:
    """Write the target task, every probe task and the held-in chats under ``out_dir``; return the written paths."""
    written = []
    target = target_rows(seed)
    for split, rows in target.items():
        written.append(out_dir / "dialogsum" / f"{split}.jsonl")
        write_jsonl(written[-1], rows)
    taken = {row["dialogue"] for rows in target.values() for row in rows}
    for probe, splits in probe_rows(seed, taken).items():
        for split, rows in splits.items():
            written.append(out_dir / "probes" / probe / f"{split}.jsonl")
            write_jsonl(written[-1], rows)
        meta = out_dir / "probes" / probe / "meta.json"
        meta.write_text(json.dumps(data.get(probe).meta(), indent=2) + "\n", encoding="utf-8")
        written.append(meta)
    for split, rows in chat_rows(seed, taken).items():
        written.append(out_dir / "chats" / f"{split}.jsonl")
        write_jsonl(written[-1], rows)
    return written


# ---------------------------------------------------------------------------------------------
# The data card's statistics (data/README.md, between the markers)
# ---------------------------------------------------------------------------------------------

CARD = DATA_DIR / "README.md"
STATS_START = "<!-- stats:start: written by `python -m utils.world.synth --card`; do not edit by hand -->"
STATS_END = "<!-- stats:end -->"


def words(text: str) -> int:
    """Number of whitespace-separated words."""
    return len(text.split())


def spread(values: list[int]) -> str:
    """``mean (min-max)`` of a list of counts."""
    return f"{sum(values) / len(values):.1f} ({min(values)}-{max(values)})"


def tiny_tokenizer():
    """The tiny model's tokenizer (``data/models/tiny-flan-t5/tokenizer.json``) if it exists, else ``None``."""
    path = TINY_MODEL_DIR / "tokenizer.json"
    if not path.is_file():
        return None
    from tokenizers import Tokenizer  # the fast tokenizer itself: loads in milliseconds

    return Tokenizer.from_file(str(path))


def card_stats(data_dir: Path = DATA_DIR) -> str:
    """The data card's statistics as markdown, computed from the files under ``data_dir``."""
    tok = tiny_tokenizer()
    def tokens(texts: list[str]) -> list[int]:
        return [len(encoding.ids) for encoding in tok.encode_batch(texts)]

    target = {s: read_jsonl(data_dir / "dialogsum" / f"{s}.jsonl", TARGET_COLUMNS) for s in SPLITS}
    lines = ["### Target task: `data/dialogsum/`", ""]
    head = "| split | dialogues | rows | turns | dialogue words | summary words | facts |"
    if tok:
        head += " dialogue tokens | summary tokens |"
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for split, rows in target.items():
        dialogues = list(dict.fromkeys(r["dialogue"] for r in rows))
        facts = {r["dialogue"]: len(r.get("facts", ())) for r in rows}
        cells = [split, len(dialogues), len(rows), spread([d.count("\n") + 1 for d in dialogues]),
                 spread([words(d) for d in dialogues]), spread([words(r["summary"]) for r in rows]),
                 spread(list(facts.values()))]
        if tok:
            cells += [spread(tokens(dialogues)), spread(tokens([r["summary"] for r in rows]))]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    lines += ["", "Counts are mean (min-max). "
              + ("Tokens: the tiny model's tokenizer (`data/models/tiny-flan-t5`), with the end-of-sequence token."
                 if tok else "Token counts appear once the tiny model exists (`make model`, then "
                             "`python -m utils.world.synth --card`)."), ""]
    lines += ["#### Topics (dialogues per split)", "", "| topic | " + " | ".join(SPLITS) + " |",
              "|---|" + "---|" * len(SPLITS)]
    for topic in TOPICS:
        counts = [len({r["dialogue"] for r in target[s] if r["topic"] == topic}) for s in SPLITS]
        lines.append(f"| {topic} | " + " | ".join(map(str, counts)) + " |")
    rng = random.Random(0)
    phrasings = [len(make_dialogue(rng, topic, False).summaries) for topic in TOPICS for _ in range(50)]
    lines += ["", f"Summary phrasings per dialogue (all outcomes of all families): {min(phrasings)}-{max(phrasings)}; "
              f"each test dialogue has {N_REFERENCES} different ones as references."]
    held = held_out_values()
    test = list(dict.fromkeys(r["dialogue"] for r in target["test"]))
    lines += ["", f"Held-out values (made up, only in test dialogues): {sum(map(len, held.values()))} values of "
              f"{len(held)} open classes, e.g. " + ", ".join(f"{k}: {v[0]}" for k, v in list(held.items())[:8])
              + f"; {sum(map(has_held_out_value, test))} of the {len(test)} test dialogues contain one.", ""]
    lines += ["### Probe tasks: `data/probes/`", "", "| probe | train | validation | test | input words | target |",
              "|---|---|---|---|---|---|"]
    for probe in PROBES:
        rows = {s: read_jsonl(data_dir / "probes" / probe / f"{s}.jsonl", data.get(probe).columns) for s in SPLITS}
        text, target_col = data.get(probe).long_field, data.get(probe).answer
        all_rows = [r for s in SPLITS for r in rows[s]]
        if target_col == "label":
            labels = sorted({r["label"] for r in all_rows})
            shown = f"{len(labels)} labels" if len(labels) > 3 else ", ".join(
                f"{lab} {sum(r['label'] == lab for r in all_rows) / len(all_rows):.0%}" for lab in labels)
        else:
            shown = f"{target_col} words {spread([words(r[target_col]) for r in all_rows])}"
        lines.append(f"| {probe} | {len(rows['train'])} | {len(rows['validation'])} | {len(rows['test'])} | "
                     f"{spread([words(r[text]) for r in all_rows])} | {shown} |")
    lines += chat_stats(data_dir)
    files = sorted(p for p in (data_dir / "dialogsum").glob("*")) + sorted((data_dir / "probes").rglob("*.*")) + \
        sorted((data_dir / "chats").glob("*"))
    size = sum(p.stat().st_size for p in files)
    lines += ["", f"All {len(files)} files together: {size / 1e6:.2f} MB (limit 15 MB).", ""]
    return "\n".join(lines)


def chat_stats(data_dir: Path = DATA_DIR) -> list[str]:
    """The data card's lines about the held-in chats (``data/chats/``)."""
    lines = ["", "### Held-in chats: `data/chats/`", "", "| split | chats | turns | chat words | summary words |",
             "|---|---|---|---|---|"]
    for split in SPLITS:
        rows = read_jsonl(data_dir / "chats" / f"{split}.jsonl", ("id", "dialogue", "summary", "topic"))
        lines.append(f"| {split} | {len(rows)} | {spread([r['dialogue'].count(chr(10)) + 1 for r in rows])} | "
                     f"{spread([words(r['dialogue']) for r in rows])} | {spread([words(r['summary']) for r in rows])} |")
    return lines


def write_card(card: Path = CARD, data_dir: Path = DATA_DIR) -> None:
    """Replace the statistics section of the data card (between the markers) with fresh numbers."""
    text = card.read_text(encoding="utf-8")
    if STATS_START not in text or STATS_END not in text:
        raise ValueError(f"{card} lacks the statistics markers; add the lines\n{STATS_START}\n{STATS_END}")
    before, rest = text.split(STATS_START, 1)
    after = rest.split(STATS_END, 1)[1]
    card.write_text(before + STATS_START + "\n" + card_stats(data_dir) + "\n" + STATS_END + after, encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, default=DATA_DIR,
                        help="folder that receives dialogsum/, probes/ and chats/")
    parser.add_argument("--card", action="store_true",
                        help="only refresh the statistics in README.md (also done after writing the data)")
    args = parser.parse_args(argv)
    if args.card:
        write_card(args.out / "README.md", args.out)
        print(f"Updated the statistics in {args.out / 'README.md'}.")
        return
    paths = generate(args.out, args.seed)
    total = sum(p.stat().st_size for p in paths)
    print(f"Wrote {len(paths)} files under {args.out} ({total / 1e6:.1f} MB).")
    if (args.out / "README.md").is_file():
        write_card(args.out / "README.md", args.out)
        print(f"Updated the statistics in {args.out / 'README.md'}.")


if __name__ == "__main__":
    main()

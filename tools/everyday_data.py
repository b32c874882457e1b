"""Generated everyday sentences for the second stage of train_small_model.py.

SST-2 is movie-review phrases. What users send is product reviews, support messages and posts,
where the sentiment often hangs on a construction the phrases rarely show: a negated negative
("no complaints"), a contrast whose second clause wins ("nice box, but it arrived broken"),
surprise praise, sarcasm, faint praise. This module composes labelled sentences of that kind
from small hand-written parts (things, clauses, adjectives) and templates, seeded, so the
training data is a pure function of the seed.

Kept apart from the evaluation sets: `generate` drops every sentence that shares a run of
`SHINGLE` words with a sentence of a test file (tests/fixtures/everyday.tsv and
everyday-heldout.tsv), so no test sentence, or a near copy of one, is trained on. The parts
were written for this module, not taken from the test files.
"""

import random
import re

THINGS = [
    "this phone", "the hotel", "this app", "the blender", "this laptop", "the headphones",
    "this restaurant", "the course", "this jacket", "the car", "the mattress", "this game",
    "the service", "the tour", "this vacuum", "the camera", "this printer", "the bank",
    "the gym", "this book", "the movie", "the show", "the software", "the charger", "these shoes",
    "the coffee machine", "the airline", "this sofa", "the dentist", "the new update",
    "this keyboard", "the kettle", "the salon", "the delivery service", "this backpack",
    "the smartwatch", "the hostel", "this TV", "the insurance company", "the bakery",
    "this tablet", "the vet", "the cafe", "this drill", "the water bottle", "the streaming service",
    "the moving company", "this lamp", "the rental car", "the yoga class",
]
CHEAP_THINGS = [
    "a cheap phone", "a budget tablet", "a twenty-dollar watch", "a secondhand bike",
    "a discount mattress", "a no-name charger", "a supermarket wine", "a free app",
    "a bargain-bin novel", "an off-brand vacuum", "a cheap hotel", "a roadside diner",
]
POS_ADJ = [
    "great", "excellent", "fantastic", "reliable", "comfortable", "wonderful", "sturdy",
    "brilliant", "perfect", "solid", "superb", "lovely", "impressive", "delightful", "outstanding",
    "fast", "helpful", "amazing", "terrific", "good",
]
NEG_ADJ = [
    "terrible", "awful", "flimsy", "slow", "useless", "noisy", "dirty", "disappointing",
    "unreliable", "buggy", "uncomfortable", "overpriced", "broken", "horrible", "bad", "poor",
    "frustrating", "annoying", "dreadful", "mediocre",
]
POS_CLAUSES = [
    "it works perfectly", "the staff were lovely", "the battery lasts for days",
    "setup took two minutes", "it arrived a day early", "the food was delicious",
    "it feels really well built", "support sorted it out right away", "the picture is gorgeous",
    "it is quiet and fast", "the room was spotless", "the sound is rich and clear",
    "it does exactly what it promises", "my whole family loves it", "the results are excellent",
    "it has been rock solid", "the instructor was fantastic", "it fits like a glove",
    "everything arrived in perfect shape", "the coffee is excellent", "it saves me hours every week",
    "the view was breathtaking", "the story kept me hooked", "the team was quick and friendly",
    "it runs smoothly", "the quality is top notch", "the price was very fair",
]
NEG_CLAUSES = [
    "it stopped working after a week", "the battery dies by lunch", "support never replied",
    "it arrived damaged", "the room was filthy", "it crashes all the time",
    "the strap snapped on day two", "it overheats constantly", "the food was cold and bland",
    "the staff were rude", "it is painfully slow", "half the features don't work",
    "the seams came apart", "it leaks everywhere", "they charged me twice",
    "the sound crackles", "nobody answered the phone", "the plot makes no sense",
    "it broke the first time I used it", "the refund never came", "it smells of plastic",
    "the screen flickers", "the wait was over an hour", "it keeps losing my data",
    "the fit is all wrong", "it drains my phone", "the noise is unbearable",
]
POS_NP = [
    "the friendly staff", "the beautiful design", "the low price", "the fast delivery",
    "the great location", "the nice packaging", "the lovely view", "the glowing reviews",
    "the clever idea", "the stylish look", "the free shipping", "the tasty starters",
]
NEG_NP = [
    "the long wait", "the high price", "the confusing setup", "the late delivery",
    "the ugly packaging", "the bad reviews", "the noisy neighbours", "the rainy weather",
    "the slow start", "the small room", "a few scratches", "the awkward checkout",
]
PROBLEMS = ["problem", "issue", "complaint", "glitch", "hiccup", "fault", "defect", "complaint"]
GERUNDS_BAD = [
    "waiting on hold for an hour", "restarting it every morning", "cold food",
    "paying extra for nothing", "losing your files", "being ignored by support",
    "sleeping next to a jackhammer", "chargers that die in a week", "reading error messages",
]


def _cap(text):
    return text[0].upper() + text[1:]


def _templates():
    """(label, kind, function of rng -> sentence)."""
    c = random.Random.choice
    t = [
        # Negated negatives and double negatives: positive.
        (1, "negation", lambda r: f"Not a single {c(r, PROBLEMS)} with {c(r, THINGS)} so far."),
        (1, "negation", lambda r: f"I have no {c(r, ['complaints', 'regrets', 'issues'])} about {c(r, THINGS)}."),
        (1, "negation", lambda r: f"Not one {c(r, PROBLEMS)} since I got {c(r, THINGS)}."),
        (1, "negation", lambda r: f"I've never had a {c(r, PROBLEMS)} with {c(r, THINGS)}."),
        (1, "negation", lambda r: f"{_cap(c(r, THINGS))} has never let me down."),
        (1, "negation", lambda r: f"{_cap(c(r, THINGS))} never disappoints."),
        (1, "negation", lambda r: f"I can't find anything wrong with {c(r, THINGS)}."),
        (1, "negation", lambda r: f"I honestly can't fault {c(r, THINGS)}."),
        (1, "negation", lambda r: f"There's nothing I would change about {c(r, THINGS)}."),
        (1, "negation", lambda r: f"Nothing went wrong with {c(r, THINGS)}, not even once."),
        (1, "negation", lambda r: f"{_cap(c(r, THINGS))} is not {c(r, NEG_ADJ)} at all, it's {c(r, POS_ADJ)}."),
        (1, "negation", lambda r: f"{_cap(c(r, THINGS))} is far from {c(r, NEG_ADJ)}."),
        (1, "negation", lambda r: f"You won't regret choosing {c(r, THINGS)}."),
        (1, "negation", lambda r: f"I don't regret buying {c(r, THINGS)} one bit."),
        (1, "negation", lambda r: f"No {c(r, ['problems', 'issues', 'surprises', 'complaints'])} at all, {c(r, POS_CLAUSES)}."),
        (1, "negation", lambda r: f"It's impossible to dislike {c(r, THINGS)}."),
        (1, "negation", lambda r: f"I couldn't be happier with {c(r, THINGS)}."),
        (1, "negation", lambda r: f"{_cap(c(r, THINGS))} isn't {c(r, NEG_ADJ)} in the slightest."),
        (1, "negation", lambda r: f"Never once did {c(r, THINGS)} {c(r, ['fail', 'break', 'let me down', 'disappoint'])}."),
        (1, "negation", lambda r: f"I wouldn't swap {c(r, THINGS)} for anything."),
        (1, "negation", lambda r: f"There is no reason not to buy {c(r, THINGS)}."),
        (1, "negation", lambda r: f"Nobody {c(r, ['complained', 'was disappointed', 'had a bad word to say'])} about {c(r, THINGS)}."),
        # Negated positives: negative.
        (0, "negation", lambda r: f"I can't recommend {c(r, THINGS)}."),
        (0, "negation", lambda r: f"I would not recommend {c(r, THINGS)} to a friend."),
        (0, "negation", lambda r: f"{_cap(c(r, THINGS))} is not worth {c(r, ['the money', 'the hype', 'the price', 'your time'])}."),
        (0, "negation", lambda r: f"{_cap(c(r, THINGS))} is not {c(r, POS_ADJ)} at all."),
        (0, "negation", lambda r: f"{_cap(c(r, THINGS))} isn't {c(r, POS_ADJ)}, it's {c(r, NEG_ADJ)}."),
        (0, "negation", lambda r: f"Nothing about {c(r, THINGS)} {c(r, ['impressed me', 'works properly', 'was enjoyable', 'feels right'])}."),
        (0, "negation", lambda r: f"{_cap(c(r, THINGS))} never works when I need it."),
        (0, "negation", lambda r: f"I will never {c(r, ['use', 'buy', 'book'])} {c(r, THINGS)} again."),
        (0, "negation", lambda r: f"Not once did {c(r, THINGS)} work properly."),
        (0, "negation", lambda r: f"{_cap(c(r, THINGS))} didn't live up to the hype."),
        (0, "negation", lambda r: f"{_cap(c(r, THINGS))} is not as {c(r, POS_ADJ)} as I expected."),
        (0, "negation", lambda r: f"{_cap(c(r, THINGS))} is far from {c(r, POS_ADJ)}."),
        (0, "negation", lambda r: f"I don't think I'll ever use {c(r, THINGS)} again."),
        (0, "negation", lambda r: f"No one should put up with {c(r, THINGS)}."),
        (0, "negation", lambda r: f"Not impressed with {c(r, THINGS)}, {c(r, NEG_CLAUSES)}."),
        (0, "negation", lambda r: f"{_cap(c(r, THINGS))} doesn't do anything well."),
        (0, "negation", lambda r: f"I'm not happy with {c(r, THINGS)} at all."),
        (0, "negation", lambda r: f"Hardly anything about {c(r, THINGS)} is {c(r, POS_ADJ)}."),
        # Contrast: the second clause wins.
        (1, "contrast", lambda r: f"{_cap(c(r, NEG_CLAUSES))}, but {c(r, POS_CLAUSES)} and I love it."),
        (1, "contrast", lambda r: f"At first {c(r, NEG_CLAUSES)}, but now {c(r, POS_CLAUSES)}."),
        (1, "contrast", lambda r: f"Despite {c(r, NEG_NP)}, {c(r, THINGS)} was {c(r, POS_ADJ)}."),
        (1, "contrast", lambda r: f"Although {c(r, NEG_CLAUSES)}, overall {c(r, THINGS)} is {c(r, POS_ADJ)}."),
        (1, "contrast", lambda r: f"{_cap(c(r, THINGS))} isn't perfect, but it's {c(r, POS_ADJ)} and I'd buy it again."),
        (1, "contrast", lambda r: f"Ignore {c(r, NEG_NP)}, {c(r, THINGS)} is {c(r, POS_ADJ)}."),
        (1, "contrast", lambda r: f"Sure, {c(r, NEG_CLAUSES)}, yet {c(r, POS_CLAUSES)}, so I'm happy."),
        (1, "contrast", lambda r: f"{_cap(c(r, NEG_NP))} put me off, but {c(r, THINGS)} turned out {c(r, POS_ADJ)}."),
        (0, "contrast", lambda r: f"{_cap(c(r, POS_CLAUSES))}, but {c(r, NEG_CLAUSES)}."),
        (0, "contrast", lambda r: f"{_cap(c(r, POS_CLAUSES))}, too bad {c(r, NEG_CLAUSES)}."),
        (0, "contrast", lambda r: f"{_cap(c(r, POS_CLAUSES))}, shame {c(r, NEG_CLAUSES)}."),
        (0, "contrast", lambda r: f"Despite {c(r, POS_NP)}, {c(r, THINGS)} was {c(r, NEG_ADJ)}."),
        (0, "contrast", lambda r: f"Although {c(r, POS_CLAUSES)}, {c(r, NEG_CLAUSES)} so I'm returning it."),
        (0, "contrast", lambda r: f"It was {c(r, POS_ADJ)} for a week, then {c(r, NEG_CLAUSES)}."),
        (0, "contrast", lambda r: f"{_cap(c(r, THINGS))} worked fine until {c(r, NEG_CLAUSES)}."),
        (0, "contrast", lambda r: f"{_cap(c(r, POS_NP))}, but {c(r, THINGS)} itself is {c(r, NEG_ADJ)}."),
        (0, "contrast", lambda r: f"I really wanted to like {c(r, THINGS)}, but {c(r, NEG_CLAUSES)}."),
        (0, "contrast", lambda r: f"{_cap(c(r, THINGS))} looks {c(r, POS_ADJ)}, but {c(r, NEG_CLAUSES)}."),
        # Surprise and rhetorical praise: positive.
        (1, "surprise", lambda r: f"Who would have thought {c(r, CHEAP_THINGS)} could be so {c(r, POS_ADJ)}?"),
        (1, "surprise", lambda r: f"I never expected {c(r, CHEAP_THINGS)} to be this {c(r, POS_ADJ)}."),
        (1, "surprise", lambda r: f"I didn't expect much from {c(r, THINGS)}, but it's {c(r, POS_ADJ)}."),
        (1, "surprise", lambda r: f"I was expecting the worst, but {c(r, POS_CLAUSES)}."),
        (1, "surprise", lambda r: f"Didn't think I'd like {c(r, THINGS)}, now I use it every day."),
        (1, "surprise", lambda r: f"Can't believe how {c(r, POS_ADJ)} {c(r, THINGS)} is."),
        (1, "surprise", lambda r: f"How is {c(r, CHEAP_THINGS)} this {c(r, POS_ADJ)}?"),
        # Sarcasm and faint praise: negative.
        (0, "sarcasm", lambda r: f"{_cap(c(r, POS_ADJ))}, if you enjoy {c(r, GERUNDS_BAD)}."),
        (0, "sarcasm", lambda r: f"{_cap(c(r, THINGS))} is perfect if you like {c(r, GERUNDS_BAD)}."),
        (0, "sarcasm", lambda r: f"Love how {c(r, NEG_CLAUSES)}. Thanks for nothing."),
        (0, "sarcasm", lambda r: f"Oh great, {c(r, NEG_CLAUSES)} again."),
        (0, "sarcasm", lambda r: f"Just what I needed: {c(r, THINGS)} where {c(r, NEG_CLAUSES)}."),
        (0, "faint", lambda r: f"{_cap(c(r, THINGS))} is okay, I suppose, but {c(r, NEG_CLAUSES)}."),
        (0, "faint", lambda r: f"{_cap(c(r, THINGS))} works, sort of, when it feels like it."),
        (0, "faint", lambda r: f"The best I can say about {c(r, THINGS)} is that it exists."),
        (0, "faint", lambda r: f"{_cap(c(r, THINGS))} was fine, I guess, but I won't be back."),
        (0, "faint", lambda r: f"I've seen better {c(r, ['service', 'quality', 'food', 'design'])} at a petrol station."),
        # Plain, for the domain.
        (1, "plain", lambda r: f"{_cap(c(r, THINGS))} is {c(r, POS_ADJ)}."),
        (1, "plain", lambda r: f"I love {c(r, THINGS)}, {c(r, POS_CLAUSES)}."),
        (1, "plain", lambda r: f"{_cap(c(r, POS_CLAUSES))}, highly recommended."),
        (1, "plain", lambda r: f"Really happy with {c(r, THINGS)}."),
        (0, "plain", lambda r: f"{_cap(c(r, THINGS))} is {c(r, NEG_ADJ)}."),
        (0, "plain", lambda r: f"I hate {c(r, THINGS)}, {c(r, NEG_CLAUSES)}."),
        (0, "plain", lambda r: f"{_cap(c(r, NEG_CLAUSES))}, avoid."),
        (0, "plain", lambda r: f"Really disappointed with {c(r, THINGS)}."),
    ]
    return t


SHINGLE = 4


def _words(text):
    return re.findall(r"[a-z0-9']+", text.lower())


def _shingles(text):
    w = _words(text)
    return {tuple(w[i : i + SHINGLE]) for i in range(len(w) - SHINGLE + 1)} or {tuple(w)}


def generate(count, seed, exclude_texts=()):
    """`count` distinct (text, label, kind) triples, balanced over the templates; none shares a
    run of SHINGLE words with a text of `exclude_texts`. Returns the triples and the number
    dropped by that guard."""
    rng = random.Random(seed)
    banned = set()
    for text in exclude_texts:
        banned |= _shingles(text)
    templates = _templates()
    seen, out, dropped = set(), [], 0
    attempts = 0
    while len(out) < count:
        attempts += 1
        if attempts > count * 50:
            raise RuntimeError(f"only {len(out)} distinct sentences after {attempts} attempts")
        label, kind, make = templates[len(out) % len(templates)] if attempts % 2 else rng.choice(templates)
        text = make(rng)
        if text in seen:
            continue
        if _shingles(text) & banned:
            dropped += 1
            continue
        seen.add(text)
        out.append((text, label, kind))
    rng.shuffle(out)
    return out, dropped


def read_test_texts(paths):
    texts = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            next(f)
            texts.extend(line.split("\t")[0] for line in f if line.strip())
    return texts


if __name__ == "__main__":
    import sys

    tests = read_test_texts(sys.argv[1:])
    sample, dropped = generate(40, 1, tests)
    for text, label, kind in sample:
        print(label, kind, text)
    print(f"dropped {dropped}", file=sys.stderr)

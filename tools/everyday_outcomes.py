"""Generated many-domain everyday sentences whose sentiment lies in an outcome, for training.

The default model read much everyday praise as a complaint: sentences that praise by
describing an outcome name the trouble that was dealt with ("the leak was fixed before the
weekend"), and words of trouble pulled it to negative whatever the sentence said about them.
This module composes labelled sentences in which the same trouble words appear in positive
and negative sentences alike, so that only what happened to the trouble decides the label:

- resolved trouble (positive) and trouble that stays, returns or is ignored (negative),
  both built from one list of troubles per domain;
- good and bad facts about a domain's things, with no sentiment word in them;
- negated problems (positive) and negated fixes (negative);
- explicit praise and complaint in the domain's own words, so plain sentences stay right.

Kept apart from the evaluation sets, by construction and by a check:
- the parts (domains' things, troubles, fixes, times, agents) and the sentence shapes were
  written for this module; the held-out set tests/fixtures/everyday-domains.tsv was written by
  hand, sentence by sentence, with no templates;
- `generate` drops every sentence that shares a run of SHINGLE words with a sentence of any
  test file it is given (all of tests/fixtures/everyday*.tsv), and reports how many it dropped.

Everything is a pure function of the seed.
"""

import random

# One definition of "near a test sentence" for both generators.
from everyday_data import SHINGLE, _shingles

# domain -> parts. "trouble": noun phrases of things that go wrong, used in both classes.
DOMAINS = {
    "repairs": {
        "things": ["the dishwasher", "our garage door", "the shower pump", "the central heating", "the dryer", "our gate"],
        "troubles": ["the dripping tap", "a cracked pipe", "the faulty thermostat", "the jammed lock", "a blown fuse", "the rattling fan", "the rotten floorboard"],
        "agents": ["the fitter", "the repairman", "the engineer they sent", "the contractor"],
        "good_facts": ["runs quietly again", "has worked every day since the visit", "was back in use by lunchtime", "needed only a five-minute adjustment"],
        "bad_facts": ["stopped again within the week", "makes a grinding noise since the visit", "was left in pieces on the floor", "cost three times the estimate"],
        "praise": ["skilled", "tidy", "reliable", "professional"],
        "blame": ["sloppy", "careless", "unreliable", "incompetent"],
    },
    "stay": {
        "things": ["the guest room", "our cabin", "the holiday flat", "the B&B", "the lodge", "the suite"],
        "troubles": ["a double booking", "the broken radiator", "the noisy pipes", "a missing reservation", "the blocked toilet", "the dead key card"],
        "agents": ["the front desk", "the duty manager", "the host", "the concierge"],
        "good_facts": ["was warm and quiet all week", "had fresh flowers waiting for us", "was ready an hour early", "had a view straight over the bay"],
        "bad_facts": ["had mould along the window frame", "was next to the all-night bar", "was half the size of the photos", "had no hot water after eight"],
        "praise": ["cosy", "welcoming", "spotless", "charming"],
        "blame": ["grubby", "cramped", "unwelcoming", "shabby"],
    },
    "food": {
        "things": ["the noodle bar", "our local bistro", "the takeaway", "the pub kitchen", "the sushi place", "the canteen"],
        "troubles": ["a wrong order", "the cold chips", "a missing side dish", "the burnt toast", "an overcharged bill", "the long queue"],
        "agents": ["the waitress", "the head chef", "the owner", "the manager on shift"],
        "good_facts": ["came out piping hot", "was gone in minutes", "had us coming back the next night", "was cooked exactly as asked"],
        "bad_facts": ["came out cold in the middle", "left us both with stomach cramps", "was half the size of last time", "arrived forty minutes after the starters"],
        "praise": ["tasty", "flavourful", "generous", "mouth-watering"],
        "blame": ["tasteless", "soggy", "greasy", "stingy"],
    },
    "delivery": {
        "things": ["my parcel", "the grocery drop", "our flat-pack wardrobe", "the replacement part", "the birthday present", "my order"],
        "troubles": ["a lost package", "the damaged box", "a missed slot", "the wrong address label", "a delayed shipment", "the missing item"],
        "agents": ["the courier firm", "the driver", "the seller", "the depot team"],
        "good_facts": ["was on the doorstep a day early", "came in the exact hour promised", "arrived without a scratch", "was handed to me in person"],
        "bad_facts": ["was left out in the rain", "went to a house across town", "turned up crushed flat", "still shows as in transit"],
        "praise": ["speedy", "careful", "dependable", "punctual"],
        "blame": ["careless", "sluggish", "chaotic", "unreliable"],
    },
    "banking": {
        "things": ["my current account", "the savings app", "our joint account", "the card machine", "my credit card", "the online banking"],
        "troubles": ["a suspicious transaction", "a frozen card", "the double payment", "an unexpected charge", "a failed transfer", "the locked account"],
        "agents": ["the fraud team", "the branch manager", "the helpline", "my account adviser"],
        "good_facts": ["showed the money within seconds", "has never charged me a penny in fees", "flagged the scam straight away", "paid the interest on the right day"],
        "bad_facts": ["took a fee for every transfer", "showed the wrong balance for a week", "froze my wages without telling me", "lost the payment somewhere"],
        "praise": ["trustworthy", "straightforward", "helpful", "efficient"],
        "blame": ["shady", "unhelpful", "baffling", "sluggish"],
    },
    "health": {
        "things": ["the surgery", "my clinic", "the pharmacy", "the ward", "the dental practice", "the eye clinic"],
        "troubles": ["a painful tooth", "the lingering cough", "a prescription mix-up", "the stiff shoulder", "a skin rash", "the migraine"],
        "agents": ["the GP", "the hygienist", "the ward nurse", "the consultant"],
        "good_facts": ["had me seen within the hour", "sent the results the next morning", "had my prescription ready on arrival", "called back exactly when promised"],
        "bad_facts": ["kept me waiting five hours", "sent my notes to the wrong patient", "lost my blood sample", "booked me for the wrong scan"],
        "praise": ["caring", "thorough", "attentive", "kind"],
        "blame": ["dismissive", "careless", "cold", "negligent"],
    },
    "travel": {
        "things": ["the coach trip", "our flight home", "the night train", "the hire car", "the river cruise", "the airport transfer"],
        "troubles": ["a missed connection", "the lost suitcase", "an overbooked flight", "the long delay", "a cancelled ferry", "the broken seat"],
        "agents": ["the airline", "the tour rep", "the gate staff", "the rail company"],
        "good_facts": ["left and landed on time", "had us at the hotel before dinner", "had plenty of legroom", "ran like clockwork"],
        "bad_facts": ["sat on the runway for three hours", "dropped us miles from the hotel", "left without half the passengers", "had no working toilets"],
        "praise": ["smooth", "relaxing", "well organised", "comfortable"],
        "blame": ["chaotic", "exhausting", "badly organised", "cramped"],
    },
    "software": {
        "things": ["the editor", "the budgeting app", "my laptop", "the photo app", "the game", "the sync tool"],
        "troubles": ["a nasty bug", "the freezing screen", "a sync error", "the memory leak", "a failed update", "the login loop"],
        "agents": ["the developers", "the help desk", "tech support", "the vendor"],
        "good_facts": ["opens instantly now", "has not crashed once this year", "kept every file through the upgrade", "syncs across all my devices"],
        "bad_facts": ["freezes whenever I print", "deleted my settings again", "drains the battery by noon", "needs a reinstall every week"],
        "praise": ["slick", "intuitive", "polished", "responsive"],
        "blame": ["clunky", "laggy", "bloated", "glitchy"],
    },
    "education": {
        "things": ["the evening class", "my son's school", "the language course", "the coding camp", "the college", "the maths tutor"],
        "troubles": ["a failed exam", "the missing grades", "a timetable clash", "the late enrolment", "a lost assignment", "the falling marks"],
        "agents": ["the head teacher", "the course leader", "the tutor", "the admissions office"],
        "good_facts": ["got him through the resit", "had every grade published on time", "left me speaking confidently", "got me a place on the next intake"],
        "bad_facts": ["never marked our homework", "changed the syllabus a week before exams", "cancelled half the sessions", "kept the fees after dropping the module"],
        "praise": ["inspiring", "patient", "engaging", "supportive"],
        "blame": ["boring", "disorganised", "unhelpful", "uninspiring"],
    },
    "housing": {
        "things": ["our rented flat", "the new house", "the housing association", "the tower block", "the studio", "the letting office"],
        "troubles": ["a damp wall", "the broken boiler", "a rent dispute", "the pest problem", "a blocked drain", "the faulty intercom"],
        "agents": ["the landlord", "the letting agent", "the caretaker", "the housing officer"],
        "good_facts": ["stays warm through the winter", "had the keys ready on the day", "returned the deposit in full", "kept the rent the same this year"],
        "bad_facts": ["has had no heating since November", "smells of damp in every room", "raised the rent twice this year", "never answers the emergency line"],
        "praise": ["responsive", "fair", "considerate", "decent"],
        "blame": ["negligent", "greedy", "unresponsive", "dodgy"],
    },
    "telecom": {
        "things": ["our broadband", "my phone contract", "the mobile network", "the fibre line", "the TV package", "the home hub"],
        "troubles": ["a dropped connection", "the billing error", "a slow line", "the dead landline", "a roaming charge", "the patchy signal"],
        "agents": ["the provider", "the call centre", "the network engineer", "customer care"],
        "good_facts": ["has not dropped once since the upgrade", "costs less than my old deal", "gets full signal in the basement", "was live the same afternoon"],
        "bad_facts": ["cuts out every night", "costs twice what was quoted", "has no signal in the kitchen", "took a month to connect"],
        "praise": ["fast", "solid", "stable", "good value"],
        "blame": ["patchy", "overpriced", "flaky", "sluggish"],
    },
    "shopping": {
        "things": ["the coat", "my new trainers", "the desk lamp", "the garden chairs", "the toaster", "the rug"],
        "troubles": ["a faulty zip", "the wrong size", "a scratched lens", "the missing screws", "a loose handle", "the torn seam"],
        "agents": ["the store", "the seller", "the returns desk", "the brand"],
        "good_facts": ["still looks brand new a year on", "fits like it was made for me", "has outlasted two cheaper ones", "survived the kids and the dog"],
        "bad_facts": ["fell apart after one wash", "scratched the first time I used it", "looks nothing like the picture", "stopped working in a month"],
        "praise": ["sturdy", "well made", "stylish", "comfy"],
        "blame": ["flimsy", "shoddy", "cheaply made", "tacky"],
    },
}

QUICK = ["within the hour", "the same afternoon", "overnight", "in a couple of days", "before the weekend", "first thing next morning", "in no time", "before I had even chased it"]
SLOW = ["after six weeks", "three months on", "since last spring", "after four phone calls", "two weeks later", "since the start of the year"]
FIXED = ["was sorted out", "got fixed", "was put right", "was cleared up", "was dealt with", "was taken care of", "was solved"]
RESOLVED = ["sorted out", "fixed", "dealt with", "resolved"]
RESOLVED_IT = ["sorted it out", "fixed it", "put it right", "cleared it up", "dealt with it", "resolved it"]
AGO = ["six weeks ago", "back in March", "a month ago", "before Christmas", "in the summer", "twice already"]
NTH = ["third", "fourth", "fifth", "second"]


def _cap(text):
    return text[0].upper() + text[1:]


def _a(word):
    return ("an " if word[0] in "aeiou" else "a ") + word


def _templates():
    """(label, kind, function of (rng, domain parts) -> sentence)."""
    c = random.Random.choice
    return [
        # Resolved trouble: positive, with the trouble word in it.
        (1, "implicit", lambda r, d: f"{_cap(c(r, d['troubles']))} {c(r, FIXED)} {c(r, QUICK)}."),
        (1, "implicit", lambda r, d: f"{_cap(c(r, d['agents']))} {c(r, RESOLVED)} {c(r, d['troubles'])} {c(r, QUICK)}, at no charge."),
        (1, "implicit", lambda r, d: f"I reported {c(r, d['troubles'])} and {c(r, d['agents'])} had it {c(r, ['sorted', 'fixed', 'dealt with', 'put right'])} {c(r, QUICK)}."),
        (1, "implicit", lambda r, d: f"No sign of {c(r, d['troubles'])} since {c(r, d['agents'])} came round."),
        (1, "implicit", lambda r, d: f"We had {c(r, d['troubles'])}, and {c(r, d['agents'])} {c(r, RESOLVED_IT)} without any fuss."),
        (1, "implicit", lambda r, d: f"Thanks to {c(r, d['agents'])}, {c(r, d['troubles'])} is a thing of the past."),
        (1, "implicit", lambda r, d: f"{_cap(c(r, d['agents']))} spotted {c(r, d['troubles'])} before it turned into anything."),
        (1, "implicit", lambda r, d: f"{_cap(c(r, d['troubles']))} was the only hiccup, and it {c(r, FIXED)} {c(r, QUICK)}."),
        (1, "implicit", lambda r, d: f"{_cap(c(r, d['things']))} {c(r, d['good_facts'])}."),
        (1, "implicit", lambda r, d: f"Honestly, {c(r, d['things'])} {c(r, d['good_facts'])}."),
        (1, "implicit", lambda r, d: f"Not once has {c(r, d['things'])} given us {c(r, d['troubles'])}."),
        # Trouble that stays, returns or is ignored: negative, with the same words.
        (0, "implicit", lambda r, d: f"{_cap(c(r, d['troubles']))} is still there {c(r, SLOW)}."),
        (0, "implicit", lambda r, d: f"I reported {c(r, d['troubles'])} {c(r, AGO)} and nothing has been done."),
        (0, "implicit", lambda r, d: f"{_cap(c(r, d['agents']))} said {c(r, d['troubles'])} {c(r, FIXED)}, then it came straight back."),
        (0, "implicit", lambda r, d: f"Still waiting for {c(r, d['agents'])} to deal with {c(r, d['troubles'])}."),
        (0, "implicit", lambda r, d: f"{_cap(c(r, d['troubles']))} again, the {c(r, NTH)} time this month."),
        (0, "implicit", lambda r, d: f"{_cap(c(r, d['agents']))} closed my complaint about {c(r, d['troubles'])} without doing anything."),
        (0, "implicit", lambda r, d: f"{_cap(c(r, d['agents']))} caused {c(r, d['troubles'])} and then billed me for it."),
        (0, "implicit", lambda r, d: f"Nobody has looked at {c(r, d['troubles'])} {c(r, SLOW)}."),
        (0, "implicit", lambda r, d: f"{_cap(c(r, d['things']))} {c(r, d['bad_facts'])}."),
        (0, "implicit", lambda r, d: f"Honestly, {c(r, d['things'])} {c(r, d['bad_facts'])}."),
        (0, "implicit", lambda r, d: f"{_cap(c(r, d['troubles']))} was never {c(r, RESOLVED)}, so we gave up."),
        # Explicit, in the domain's words.
        (1, "explicit", lambda r, d: f"{_cap(c(r, d['things']))} is {c(r, d['praise'])} and I'm really pleased."),
        (1, "explicit", lambda r, d: f"Really {c(r, d['praise'])} service from {c(r, d['agents'])}, highly recommended."),
        (1, "explicit", lambda r, d: f"Such {_a(c(r, d['praise']))} experience with {c(r, d['things'])}."),
        (0, "explicit", lambda r, d: f"{_cap(c(r, d['things']))} is {c(r, d['blame'])} and I'm fed up."),
        (0, "explicit", lambda r, d: f"Really {c(r, d['blame'])} service from {c(r, d['agents'])}, avoid."),
        (0, "explicit", lambda r, d: f"Such {_a(c(r, d['blame']))} experience with {c(r, d['things'])}."),
    ]


def generate(count, seed, exclude_texts=()):
    """`count` distinct (text, label, kind, domain) tuples, balanced over templates, domains
    and labels; none shares a run of SHINGLE words with a text of `exclude_texts`. Returns the
    tuples and the number dropped by that guard."""
    rng = random.Random(seed)
    banned = set()
    for text in exclude_texts:
        banned |= _shingles(text)
    templates = _templates()
    domains = sorted(DOMAINS)
    seen, out, dropped, attempts = set(), [], 0, 0
    while len(out) < count:
        attempts += 1
        if attempts > count * 50:
            raise RuntimeError(f"only {len(out)} distinct sentences after {attempts} attempts")
        # Labels alternate, so the classes stay equal whatever duplicates are skipped.
        want = len(out) % 2
        of_label = [t for t in templates if t[0] == want]
        label, kind, make = of_label[attempts % len(of_label)] if attempts % 2 else rng.choice(of_label)
        domain = domains[(attempts // len(templates)) % len(domains)] if attempts % 2 else rng.choice(domains)
        text = make(rng, DOMAINS[domain])
        if text in seen:
            continue
        if _shingles(text) & banned:
            dropped += 1
            continue
        seen.add(text)
        out.append((text, label, kind, domain))
    rng.shuffle(out)
    return out, dropped


if __name__ == "__main__":
    import sys

    from everyday_data import read_test_texts

    tests = read_test_texts(sys.argv[1:])
    sample, dropped = generate(60, 1, tests)
    for text, label, kind, domain in sample:
        print(label, kind, domain, text)
    print(f"dropped {dropped}", file=sys.stderr)

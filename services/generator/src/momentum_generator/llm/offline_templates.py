"""The offline provider's templates: the arc every course follows and the sentences its lessons
are composed from. ``{t}`` is the course topic, ``{x}`` a lesson topic."""

from __future__ import annotations

# One arc for any course: (day title, topics, objectives).
ARC: tuple[tuple[str, tuple[str, str, str], tuple[str, str]], ...] = (
    (
        "Why {t} matters",
        ("What {t} is", "Where {t} is used", "What you will build in this course"),
        ("Explain in one sentence what {t} is", "Name two situations where {t} helps"),
    ),
    (
        "The core vocabulary of {t}",
        ("Key terms", "How the terms relate", "A one-page glossary"),
        ("Define the ten most common terms of {t}", "Use the terms in a short explanation"),
    ),
    (
        "How {t} works under the hood",
        ("The moving parts", "A simple mental model", "Where the model breaks down"),
        ("Sketch how the parts of {t} fit together", "Predict the outcome of a simple case"),
    ),
    (
        "First hands-on steps with {t}",
        ("Setting up", "A first small exercise", "Checking your result"),
        ("Complete a first exercise in {t}", "Verify your own result"),
    ),
    (
        "Common patterns in {t}",
        ("Pattern one: start simple", "Pattern two: repeat and refine", "Choosing a pattern"),
        ("Recognise the common patterns of {t}", "Pick a pattern for a given task"),
    ),
    (
        "Frequent mistakes with {t}",
        ("The three classic mistakes", "Spotting them early", "Recovering from them"),
        ("List the frequent mistakes with {t}", "Correct a flawed example"),
    ),
    (
        "Tools and resources for {t}",
        ("Essential tools", "Reference material", "Communities worth joining"),
        ("Choose a starter toolset for {t}", "Find answers on your own"),
    ),
    (
        "Applying {t} to a real problem",
        ("Framing the problem", "Working through it", "Reviewing the result"),
        ("Apply {t} to a realistic problem", "Explain each step of your approach"),
    ),
    (
        "Going deeper into {t}",
        ("Beyond the basics", "Intermediate techniques", "When to use them"),
        ("Use two intermediate techniques of {t}", "Decide when they are worth it"),
    ),
    (
        "Measuring progress in {t}",
        ("What good looks like", "Simple measures", "Keeping a learning log"),
        ("Define how you will measure progress in {t}", "Start a learning log"),
    ),
    (
        "{t} in a team",
        ("Shared conventions", "Reviewing each other's work", "Communicating clearly"),
        ("Agree conventions for {t} with others", "Give useful feedback on someone's work"),
    ),
    (
        "Troubleshooting {t}",
        ("A method for finding problems", "Reading the signals", "Fixing and confirming"),
        ("Follow a troubleshooting method", "Confirm that a fix worked"),
    ),
    (
        "Making {t} a habit",
        ("Small daily practice", "Removing friction", "Tracking streaks"),
        ("Plan a ten-minute daily practice of {t}", "Remove one obstacle to practising"),
    ),
    (
        "Case study: {t} in practice",
        ("The situation", "The decisions made", "Lessons learned"),
        ("Analyse a case study of {t}", "Extract lessons for your own work"),
    ),
    (
        "Advanced techniques in {t}",
        ("Technique one", "Technique two", "Combining them"),
        ("Describe two advanced techniques of {t}", "Try one of them on an example"),
    ),
    (
        "Trade-offs and judgement in {t}",
        ("Competing goals", "Making a call", "Revisiting decisions"),
        ("Weigh the trade-offs of a decision in {t}", "Justify your choice"),
    ),
    (
        "Teaching {t} to someone else",
        ("Explaining simply", "Choosing examples", "Checking understanding"),
        ("Explain {t} to a beginner", "Prepare three good examples"),
    ),
    (
        "Combining {t} with related skills",
        ("Neighbouring skills", "Where they meet", "A combined exercise"),
        ("Connect {t} with a related skill", "Complete a combined exercise"),
    ),
    (
        "A capstone project in {t}",
        ("Choosing the project", "Planning the work", "Delivering a first version"),
        ("Plan a small capstone project in {t}", "Deliver a first version"),
    ),
    (
        "Reviewing what you know about {t}",
        ("The big ideas again", "Self-assessment", "Filling the gaps"),
        ("Summarise the big ideas of {t}", "Identify your remaining gaps"),
    ),
    (
        "Next steps with {t}",
        ("Where to go from here", "Building on this course", "Staying current"),
        ("Write a personal plan for the next month of {t}", "Choose your next resource"),
    ),
)

OUTCOMES = (
    "Explain the core ideas of {t} in your own words",
    "Apply {t} to realistic, everyday problems",
    "Avoid the most common mistakes people make with {t}",
    "Build a sustainable habit of practising {t}",
    "Judge when and how to go deeper into {t}",
)

OPENERS = (
    "{x} is easier to grasp with a concrete example in mind.",
    "Start with {x}: it is the part people most often skip.",
    "Think of {x} as a small, practical step you can take today.",
    "{x} rewards a few minutes of focused practice.",
)

SENTENCES = (
    "Today we focus on {x}.",
    "Take a moment to think about where {x} shows up in your own work.",
    "A simple way to remember {x} is to connect it to something you already do.",
    "Many learners find that {x} clicks after trying it once, slowly.",
    "Notice how {x} builds on what we covered before.",
    "Try to explain {x} out loud, as if to a colleague.",
    "If {x} feels abstract, write down one concrete example.",
    "Small, regular practice with {x} beats one long session.",
)

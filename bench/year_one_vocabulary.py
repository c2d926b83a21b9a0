"""Words for the year-one data set: fifty categories with ten topics each, title patterns, lesson
themes and sentences, so that titles, descriptions and lessons read like real courses and full-text
search has real vocabulary to rank."""

from __future__ import annotations

from typing import NamedTuple


class CategoryWords(NamedTuple):
    slug: str
    name: str
    description: str
    topics: tuple[str, ...]


# The first six are the categories the initial migration seeds; the loader adds the other 44.
CATEGORIES = (
    CategoryWords("technology", "Technology", "Software, data and the tools of the digital "
                  "world.", (
        "Python Programming", "SQL and Databases", "Web Development", "Cloud Computing",
        "Cybersecurity Basics", "Machine Learning", "Data Visualization", "Linux Command Line",
        "Git and Version Control", "APIs and Integrations")),
    CategoryWords("business", "Business", "Strategy, management, marketing and entrepreneurship.", (
        "Business Strategy", "Project Management", "Sales Conversations", "Negotiation",
        "Startup Fundraising", "Customer Discovery", "Team Leadership", "Operations Management",
        "Pricing Strategy", "Business Writing")),
    CategoryWords("health-wellness", "Health & Wellness", "Fitness, nutrition, sleep and mental "
                  "health.", (
        "Better Sleep", "Healthy Eating", "Stress Management", "Mobility and Stretching",
        "Home Workouts", "Mindful Breathing", "Posture and Ergonomics", "Hydration Habits",
        "Running for Beginners", "Healthy Aging")),
    CategoryWords("personal-development", "Personal Development", "Habits, productivity and "
                  "learning.", (
        "Time Management", "Habit Building", "Public Speaking", "Critical Thinking",
        "Goal Setting", "Emotional Intelligence", "Decision Making", "Memory Techniques",
        "Journaling", "Confidence Building")),
    CategoryWords("creative-arts", "Creative Arts", "Writing, design, music and photography.", (
        "Creative Writing", "Watercolor Painting", "Digital Illustration", "Photography Basics",
        "Songwriting", "Graphic Design", "Calligraphy", "Storytelling", "Video Editing",
        "Sketching")),
    CategoryWords("languages", "Languages", "Everyday phrases to fluent conversation.", (
        "Conversational Spanish", "French Pronunciation", "Japanese Hiragana", "German Grammar",
        "Italian for Travelers", "Mandarin Tones", "Portuguese Phrases", "Business English",
        "Korean Hangul", "Arabic Script")),
    CategoryWords("data-science", "Data Science", "Statistics, analysis and experiments.", (
        "Statistics", "Pandas", "Data Cleaning", "A/B Testing", "Forecasting", "Dashboards",
        "Exploratory Analysis", "Regression Models", "Data Storytelling", "Experiment Design")),
    CategoryWords("marketing", "Marketing", "Reaching, winning and keeping customers.", (
        "Content Marketing", "Email Marketing", "Search Engine Optimization", "Social Media",
        "Brand Strategy", "Copywriting", "Marketing Analytics", "Influencer Partnerships",
        "Paid Advertising", "Community Building")),
    CategoryWords("personal-finance", "Personal Finance", "Budgets, saving, debt and investing.", (
        "Budgeting", "Index Investing", "Retirement Planning", "Credit Scores", "Debt Payoff",
        "Emergency Funds", "Tax Basics", "Real Estate Investing", "Financial Independence",
        "Frugal Living")),
    CategoryWords("leadership", "Leadership", "Leading people, teams and change.", (
        "Coaching Conversations", "Giving Feedback", "Delegation", "Running Meetings",
        "Remote Teams", "Conflict Resolution", "Hiring Well", "Onboarding", "Change Management",
        "Servant Leadership")),
    CategoryWords("productivity", "Productivity", "Focus, planning and getting things done.", (
        "Deep Work", "Inbox Zero", "Weekly Planning", "Note Taking", "Focus Techniques",
        "Digital Decluttering", "The Pomodoro Technique", "Task Prioritization",
        "Calendar Blocking", "Building a Second Brain")),
    CategoryWords("mindfulness", "Mindfulness & Meditation", "Attention, calm and awareness.", (
        "Meditation", "Body Scan", "Gratitude Practice", "Mindful Walking", "Loving Kindness",
        "Breath Awareness", "Mindful Eating", "Equanimity", "Self Compassion", "Silent Retreats")),
    CategoryWords("nutrition", "Nutrition", "What to eat, and why.", (
        "Meal Prep", "Plant Based Cooking", "Macronutrients", "Gut Health", "Sugar Reduction",
        "The Mediterranean Diet", "Protein Planning", "Smart Snacking", "Reading Food Labels",
        "Intermittent Fasting")),
    CategoryWords("fitness", "Fitness", "Strength, endurance and mobility.", (
        "Strength Training", "Kettlebells", "Yoga Flow", "Pilates Core", "Marathon Training",
        "Bodyweight Workouts", "Cycling Fitness", "Swimming Technique", "Mobility Drills",
        "Recovery and Rest")),
    CategoryWords("parenting", "Parenting", "Raising happy, capable children.", (
        "Toddler Sleep", "Positive Discipline", "Screen Time", "Teen Communication",
        "Sibling Rivalry", "Homework Help", "Picky Eaters", "Family Routines", "Raising Readers",
        "Co-Parenting")),
    CategoryWords("cooking", "Cooking", "Techniques and recipes for the home kitchen.", (
        "Knife Skills", "Bread Baking", "Italian Cooking", "Fermentation", "Sauces", "Grilling",
        "Weeknight Dinners", "Pastry Basics", "Spice Blends", "Soup Making")),
    CategoryWords("music", "Music", "Playing, singing, composing and recording.", (
        "Guitar Chords", "Piano Basics", "Music Theory", "Ear Training", "Rhythm",
        "Home Recording", "Ukulele", "Singing Technique", "Beat Making", "Jazz Improvisation")),
    CategoryWords("ux-design", "UX Design", "Research, interaction and interface design.", (
        "User Research", "Wireframing", "Prototyping", "Design Systems", "Accessibility",
        "Usability Testing", "Information Architecture", "Interaction Design", "Typography",
        "Color Theory")),
    CategoryWords("writing", "Writing", "Clear, persuasive and creative writing.", (
        "Essay Writing", "Blogging", "Grammar", "Editing", "Technical Writing", "Poetry",
        "Memoir Writing", "Screenwriting", "Newsletter Writing", "Persuasive Writing")),
    CategoryWords("science", "Science", "How the natural world works.", (
        "Astronomy", "Human Biology", "Chemistry Basics", "Physics Concepts", "Climate Science",
        "Genetics", "Neuroscience", "Evolution", "Oceanography", "Geology")),
    CategoryWords("history", "History", "People, empires and ideas through time.", (
        "Ancient Rome", "World War Two", "Renaissance Art", "The Industrial Revolution",
        "Ancient Egypt", "The Cold War", "The Silk Road", "Medieval Europe",
        "The American Revolution", "History of Science")),
    CategoryWords("philosophy", "Philosophy", "Big questions and careful thinking.", (
        "Stoicism", "Ethics", "Logic", "Existentialism", "Philosophy of Mind",
        "Political Philosophy", "Buddhist Philosophy", "Epistemology", "Aesthetics",
        "Socratic Questioning")),
    CategoryWords("psychology", "Psychology", "Minds, behaviour and motivation.", (
        "Cognitive Biases", "Motivation", "Positive Psychology", "Behavioral Economics",
        "Social Psychology", "Attachment Styles", "Resilience", "Habits and the Brain",
        "Learning Science", "Persuasion")),
    CategoryWords("mathematics", "Mathematics", "Numbers, patterns and reasoning.", (
        "Algebra Refresher", "Probability", "Calculus Intuition", "Geometry", "Mental Math",
        "Linear Algebra", "Number Theory", "Logic Puzzles", "Statistics Refresher",
        "Game Theory")),
    CategoryWords("career-growth", "Career Growth", "Finding, growing and changing careers.", (
        "Resume Writing", "Job Interviews", "Salary Negotiation", "Career Change",
        "Personal Branding", "LinkedIn Profiles", "Networking", "Freelancing",
        "Promotion Planning", "Mentorship")),
    CategoryWords("entrepreneurship", "Entrepreneurship", "Starting and growing a business.", (
        "Side Hustles", "The Business Model Canvas", "Lean Startup", "E-commerce Stores",
        "Product Market Fit", "Bootstrapping", "Pitch Decks", "Small Business Accounting",
        "Growth Hacking", "Franchising")),
    CategoryWords("communication", "Communication", "Listening, speaking and being understood.", (
        "Active Listening", "Difficult Conversations", "Storytelling at Work",
        "Presentation Skills", "Small Talk", "Assertiveness", "Nonverbal Communication",
        "Email Etiquette", "Facilitation", "Cross Cultural Communication")),
    CategoryWords("relationships", "Relationships", "Partners, friends and family.", (
        "Dating", "Marriage Communication", "Friendship", "Healthy Boundaries", "Love Languages",
        "Conflict in Couples", "Long Distance Relationships", "Trust Building", "Forgiveness",
        "Family Dynamics")),
    CategoryWords("home-garden", "Home & Garden", "Growing, fixing and organising at home.", (
        "Vegetable Gardening", "Houseplants", "Composting", "Home Organization",
        "Minimalist Living", "DIY Repairs", "Interior Styling", "Herb Gardens", "Urban Balconies",
        "Cleaning Routines")),
    CategoryWords("film-video", "Film & Video", "Shooting, editing and telling stories on "
                  "screen.", (
        "Smartphone Filmmaking", "Cinematography", "Documentary Making", "Film History",
        "Color Grading", "Sound Design", "YouTube Channels", "Directing Actors",
        "Screen Composition", "Stop Motion Animation")),
    CategoryWords("travel", "Travel", "Seeing the world well, on any budget.", (
        "Budget Travel", "Solo Travel", "Travel Photography", "Packing Light", "Backpacking",
        "Travel Hacking", "Cultural Etiquette", "Road Trips", "Digital Nomad Life",
        "Sustainable Travel")),
    CategoryWords("sustainability", "Sustainability", "Living and working within the planet's "
                  "means.", (
        "Zero Waste", "Renewable Energy", "Carbon Footprints", "Sustainable Fashion",
        "The Circular Economy", "Climate Action", "Biodiversity", "Water Conservation",
        "Green Commuting", "Ethical Consumption")),
    CategoryWords("law-basics", "Law Basics", "The legal ideas everyone meets.", (
        "Contracts", "Intellectual Property", "Employment Law", "Privacy Law", "Tenant Rights",
        "Small Claims", "Copyright", "Trademarks", "Wills and Estates", "Consumer Rights")),
    CategoryWords("economics", "Economics", "Markets, money and policy.", (
        "Microeconomics", "Macroeconomics", "Inflation", "Supply and Demand",
        "Behavioral Finance", "International Trade", "Central Banks", "Economic History",
        "Development Economics", "Labor Markets")),
    CategoryWords("artificial-intelligence", "Artificial Intelligence", "Models, data and "
                  "responsible AI.", (
        "Prompt Engineering", "Large Language Models", "Neural Networks", "AI Ethics",
        "Computer Vision", "Natural Language Processing", "Generative AI",
        "Reinforcement Learning", "AI for Business", "Chatbots")),
    CategoryWords("mobile-development", "Mobile Development", "Apps for phones and tablets.", (
        "Swift and iOS", "Android with Kotlin", "Flutter", "React Native", "Mobile UX",
        "App Store Publishing", "Push Notifications", "Offline First Apps", "Mobile Testing",
        "App Performance")),
    CategoryWords("devops", "DevOps", "Shipping and running software reliably.", (
        "Docker", "Kubernetes", "Continuous Integration", "Infrastructure as Code", "Monitoring",
        "Incident Response", "Terraform", "Site Reliability Engineering", "Logging",
        "Release Engineering")),
    CategoryWords("cybersecurity", "Cybersecurity", "Protecting people, data and systems.", (
        "Password Hygiene", "Phishing Defense", "Network Security", "Ethical Hacking",
        "Threat Modeling", "Encryption", "Secure Coding", "Cloud Security", "Incident Handling",
        "Privacy Protection")),
    CategoryWords("game-development", "Game Development", "Designing and building games.", (
        "Unity", "Game Design", "Level Design", "Pixel Art", "Godot", "Game Narrative",
        "Multiplayer Networking", "Game Audio", "Procedural Generation", "Playtesting")),
    CategoryWords("teaching-learning", "Teaching & Learning", "How people learn, and how to "
                  "teach.", (
        "Lesson Planning", "Online Teaching", "Classroom Management", "Study Skills",
        "Speed Reading", "Learning How to Learn", "Tutoring", "Curriculum Design",
        "Assessment Design", "Homeschooling")),
    CategoryWords("crafts-diy", "Crafts & DIY", "Making things by hand.", (
        "Knitting", "Woodworking", "Pottery", "Sewing", "Embroidery", "Candle Making",
        "Jewelry Making", "Leathercraft", "Origami", "Upcycling")),
    CategoryWords("pets-animals", "Pets & Animals", "Caring for and training animals.", (
        "Dog Training", "Cat Behavior", "Puppy Socialization", "Aquarium Keeping",
        "Pet Nutrition", "Bird Care", "Horse Riding", "Pet First Aid", "Clicker Training",
        "Rescue Adoption")),
    CategoryWords("spirituality", "Spirituality", "Meaning, reflection and practice.", (
        "Prayer Practices", "Sacred Texts", "Contemplation", "Rituals", "Pilgrimage",
        "Yoga Philosophy", "Purpose and Meaning", "Retreat Planning", "Chanting",
        "Spiritual Journaling")),
    CategoryWords("real-estate", "Real Estate", "Buying, renting and managing property.", (
        "Home Buying", "Mortgages", "Property Management", "House Flipping", "Rental Income",
        "Home Inspection", "Real Estate Negotiation", "Commercial Property",
        "Short Term Rentals", "Home Staging")),
    CategoryWords("sales", "Sales", "Finding, winning and growing customers.", (
        "Cold Calling", "Prospecting", "Objection Handling", "Closing Techniques",
        "Sales Pipelines", "Account Management", "Social Selling", "Sales Demos",
        "Customer Success", "Upselling")),
    CategoryWords("health-literacy", "Health Literacy", "Understanding your body and your care.", (
        "First Aid", "Understanding Lab Results", "Heart Health", "Diabetes Prevention",
        "Mental Health Literacy", "Medication Safety", "Women's Health", "Men's Health",
        "Vaccines", "Caregiving")),
    CategoryWords("outdoors", "Outdoors & Adventure", "Skills for trails, rivers and mountains.", (
        "Hiking", "Camping", "Rock Climbing", "Map and Compass Navigation", "Wilderness Survival",
        "Kayaking", "Birdwatching", "Trail Running", "Foraging", "Mountaineering")),
    CategoryWords("fashion-style", "Fashion & Style", "Clothes, grooming and personal style.", (
        "Capsule Wardrobes", "Personal Style", "Color Analysis", "Tailoring", "Skincare",
        "Grooming", "Sustainable Style", "Accessorizing", "Dressing for Work",
        "Thrift Shopping")),
    CategoryWords("sports-games", "Sports & Games", "Technique, tactics and coaching.", (
        "Tennis", "The Golf Swing", "Basketball Skills", "Soccer Tactics", "Chess Strategy",
        "Coaching Youth Sports", "Sports Psychology", "Martial Arts", "Climbing Technique",
        "Table Tennis")),
    CategoryWords("no-code", "No-Code Tools", "Spreadsheets, automation and apps without code.", (
        "Spreadsheet Mastery", "Automation with Zapier", "Notion Workspaces",
        "Airtable Databases", "Website Builders", "Excel Formulas", "Google Sheets",
        "Workflow Automation", "Internal Tools", "Chatbot Builders")),
)  # fmt: skip

# "{topic}" is the topic; "{days}" the course's duration.
TITLE_PATTERNS = (
    "{topic} in {days} Days",
    "{topic} for Beginners",
    "Practical {topic}",
    "{topic}: From Basics to Confidence",
    "The Essentials of {topic}",
    "Mastering {topic}",
    "{topic} for Busy Professionals",
    "A Gentle Introduction to {topic}",
    "Everyday {topic}",
    "{topic} Fundamentals",
    "{topic} Made Simple",
    "The {days}-Day {topic} Challenge",
)

DESCRIPTION_SENTENCES = (
    "Learn {topic} one small step a day, with a short lesson and a practical exercise each "
    "morning.",
    "Over {days} days you will build real skill in {topic}, from the first principles to "
    "habits that last.",
    "Designed for curious beginners and busy professionals who want results without jargon.",
    "Each lesson takes about fifteen minutes and ends with one concrete action to try today.",
    "You will avoid the common mistakes people make in {topic} and learn how experts think "
    "about it.",
    "By the end you will have a clear plan, a finished mini project and the confidence to "
    "keep going.",
    "Part of our {category} collection: {category_description}",
    "Expect worked examples, checklists, reflection prompts and a friendly pace.",
    "No prior experience is needed; bring a notebook and fifteen minutes a day.",
)

LESSON_THEMES = (
    "Why {topic} matters",
    "The core vocabulary",
    "Setting up your practice",
    "Your first small win",
    "Common mistakes and how to avoid them",
    "Building a daily routine",
    "A closer look at the fundamentals",
    "Learning from worked examples",
    "Your first mini project",
    "Getting useful feedback",
    "Going deeper",
    "Measuring your progress",
    "Troubleshooting when you get stuck",
    "Patterns the experts use",
    "Teaching it to someone else",
    "Real-world applications",
    "Combining what you know",
    "Speed and fluency",
    "Reviewing the journey",
    "Planning what comes next",
    "Celebrate and commit",
)

LESSON_SENTENCES = (
    "Today we focus on {theme_lower}, a step that makes every later lesson in {topic} easier.",
    "Most beginners skip this part of {topic}, and it quietly holds them back for months.",
    "Start by writing down what you already know, then compare it with the ideas below.",
    "A useful rule of thumb: practise for fifteen focused minutes rather than an unfocused hour.",
    "Notice how small, repeated actions compound into visible progress within a week.",
    "If something feels confusing, slow down and try the example again with your own words.",
    "Experts in {topic} rarely rely on talent; they rely on clear routines and honest feedback.",
    "Keep a short log of what worked and what did not, so tomorrow starts from evidence.",
    "The goal is not perfection but a reliable habit you can repeat on a busy day.",
    "When you finish, explain the main idea to a friend in two sentences.",
    "Research on learning shows that spacing and retrieval beat rereading every time.",
    "Pick one idea from this lesson and apply it before the end of the day.",
    "Think of a situation this week where {topic} would have helped, and replay it.",
    "Write the steps from memory first; looking them up afterwards makes them stick.",
    "Compare your attempt with the example and name one difference that matters.",
    "Small mistakes are information: note what caused them, not how you feel about them.",
    "Ask yourself what a beginner would find hardest here, and explain that part again.",
    "Set a timer, work without distractions, and stop when it rings, even mid-thought.",
    "Tomorrow's lesson builds directly on this one, so finish today's exercise first.",
    "People who keep a visible streak are far more likely to finish what they start.",
    "Collect one real example of {topic} from your own life, work or reading.",
    "If you only have five minutes, do the exercise and skip the extra reading.",
    "Return to your notes from day one and notice how much clearer they look now.",
    "A checklist turns a good intention into something you can actually repeat.",
)

ACTION_ITEMS = (
    "Spend fifteen minutes practising today's technique.",
    "Write three sentences about what you learned.",
    "Share one insight with a friend or colleague.",
    "Schedule tomorrow's lesson in your calendar.",
    "Review yesterday's notes before you start.",
    "Try the exercise again without looking at the example.",
)

# Easiest first: a learner holds the first N, N growing with their activity. Rule kinds are those
# the badge service evaluates; the first nine match the badges migration 0003 seeds (the loader
# reuses badges that already exist, by code).
BADGES = (
    ("first-lesson", "First step", "Completed your first lesson.", "lessons_completed", 1),
    ("streak-2", "Back Again", "Learned two days in a row.", "streak_days", 2),
    ("streak-3", "On a roll", "Learned three days in a row.", "streak_days", 3),
    ("lessons-5", "Warming Up", "Completed five lessons.", "lessons_completed", 5),
    ("streak-5", "Five Alive", "Learned five days in a row.", "streak_days", 5),
    ("ten-lessons", "Getting into it", "Completed ten lessons.", "lessons_completed", 10),
    ("streak-7", "Week of momentum", "Learned seven days in a row.", "streak_days", 7),
    ("first-course", "Finisher", "Completed your first course.", "courses_completed", 1),
    ("lessons-25", "Regular", "Completed 25 lessons.", "lessons_completed", 25),
    ("streak-10", "Ten Straight", "Learned ten days in a row.", "streak_days", 10),
    ("fifty-lessons", "Lifelong learner", "Completed fifty lessons.", "lessons_completed", 50),
    ("two-courses", "Double", "Completed two courses.", "courses_completed", 2),
    ("lessons-75", "Dedicated", "Completed 75 lessons.", "lessons_completed", 75),
    ("streak-14", "Fortnight Focus", "Learned fourteen days in a row.", "streak_days", 14),
    ("three-courses", "Collector", "Completed three courses.", "courses_completed", 3),
    ("lessons-100", "Centurion", "Completed 100 lessons.", "lessons_completed", 100),
    ("first-review", "Critic", "Wrote your first course review.", "reviews_written", 1),
    ("lessons-150", "Scholar", "Completed 150 lessons.", "lessons_completed", 150),
    ("five-courses", "Polymath", "Completed five courses.", "courses_completed", 5),
    ("lessons-200", "Sage", "Completed 200 lessons.", "lessons_completed", 200),
    ("streak-21", "Habit Formed", "Learned twenty-one days in a row.", "streak_days", 21),
    ("reviews-3", "Reviewer", "Wrote three course reviews.", "reviews_written", 3),
    ("seven-courses", "Seven Summits", "Completed seven courses.", "courses_completed", 7),
    ("lessons-300", "Devotee", "Completed 300 lessons.", "lessons_completed", 300),
    ("streak-30", "Unstoppable", "Learned thirty days in a row.", "streak_days", 30),
    ("ten-courses", "Decathlete", "Completed ten courses.", "courses_completed", 10),
    ("reviews-5", "Curator", "Wrote five course reviews.", "reviews_written", 5),
    ("lessons-500", "Master", "Completed 500 lessons.", "lessons_completed", 500),
    ("streak-60", "Relentless", "Learned sixty days in a row.", "streak_days", 60),
    ("reviews-10", "Guide", "Wrote ten course reviews.", "reviews_written", 10),
)

FIRST_NAMES = (
    "Ava", "Liam", "Olivia", "Noah", "Emma", "Oliver", "Sophia", "Elijah", "Amelia", "Lucas",
    "Mia", "Mateo", "Harper", "Levi", "Evelyn", "Ethan", "Aria", "James", "Chloe", "Leo",
    "Nora", "Kai", "Zoe", "Ezra", "Maya", "Amir", "Priya", "Arjun", "Yuki", "Hiro", "Mei",
    "Chen", "Fatima", "Omar", "Layla", "Ali", "Ingrid", "Lars", "Sofia", "Diego", "Camila",
    "Mateus", "Ana", "Jonas", "Elena", "Ivan", "Aisha", "Kwame", "Zara", "Tomas",
)  # fmt: skip

LAST_NAMES = (
    "Smith", "Garcia", "Chen", "Patel", "Nguyen", "Kim", "Novak", "Rossi", "Silva", "Khan",
    "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Martinez", "Lopez", "Wilson",
    "Anderson", "Taylor", "Thomas", "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson",
    "White", "Harris", "Clark", "Lewis", "Robinson", "Walker", "Young", "Allen", "King",
    "Wright", "Scott", "Torres", "Hill", "Green", "Adams", "Baker", "Nelson", "Carter",
    "Mitchell", "Roberts", "Campbell", "Sato",
)  # fmt: skip

"""What each emotion (and "neutral") looks and sounds like on the demo site.

A video's cue channels (`chfen.demo.cues`) each show one emotion or neutral; the style of what a
channel shows supplies its content: spoken sentences (words), espeak-ng pitch, rate and loudness
and a quiet background chord (prosody), shot palette, brightness and motion speed (visuals), and
the title (title). Emotional titles are situations, never emotion words, emoji or hashtags; the
description and hashtags never depend on the emotion. The sentences use plain, frequent English
words because Whisper tiny.en mishears espeak-ng on rarer ones.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EmotionStyle:
    """The content recipe for one emotion."""

    sentences: tuple[str, ...]
    # Situations that evoke the emotion without naming it (no emotion word, emoji or hashtag).
    titles: tuple[str, ...]
    # Background colours (#RRGGBB). Each has at least one partner far enough away in OpenCV HSV
    # for PySceneDetect's ContentDetector to see a cut between them (checked by the planner).
    palette: tuple[str, ...]
    pitch: int  # espeak-ng -p, 0..99 (50 = neutral)
    rate: int  # espeak-ng -s, words per minute (175 = neutral)
    amplitude: int  # espeak-ng -a, 0..200 (100 = neutral)
    motion: float  # speed factor for the moving element in each shot
    chord_hz: tuple[float, ...]  # quiet background chord under the speech
    tremolo_hz: float  # 0 = steady chord; a wobble for tense emotions


STYLES: dict[str, EmotionStyle] = {
    "joy": EmotionStyle(
        sentences=(
            "I'm so happy today, this is the best day ever.",
            "We had so much fun at the party last night.",
            "I love this song, it makes me want to dance.",
            "Look at this beautiful sunny day, life is good.",
            "We won the game and everyone is so happy.",
            "I can't stop smiling, it is so much fun.",
            "Thank you all for the love, you make me so happy.",
            "This is the best birthday party ever.",
            "The kids are laughing and playing in the sun.",
            "What a great day with my best friends.",
        ),
        titles=(
            "We won the final in the last minute",
            "Got the letter from my first choice school",
            "First day at the beach with the whole family",
            "My little brother took his first steps today",
            "Passed my driving test on the first try",
            "The band played our song at the wedding",
        ),
        palette=("#FFD23F", "#FF8C42", "#FF9EC7", "#FF5E5B", "#7BDFF2", "#B8F2A0"),
        pitch=72,
        rate=180,
        amplitude=110,
        motion=1.0,
        chord_hz=(261.6, 329.6, 392.0),
        tremolo_hz=0.0,
    ),
    "trust": EmotionStyle(
        sentences=(
            "You can count on me, I will always be there for you.",
            "My best friend is always there for me.",
            "I trust my family, they always keep their word.",
            "My mom always tells me the truth.",
            "We help each other every single day.",
            "I know you will keep my secret safe.",
            "He made a promise and he kept it.",
            "Thank you for being there for me all these years.",
            "I feel safe when you are here with me.",
            "We are a team and we stand together.",
        ),
        titles=(
            "My neighbour looked after the house all summer",
            "My brother lent me his car for a whole week",
            "Same mechanic for ten years and he never charged extra",
            "My coach stayed late every night to help me practise",
            "A stranger handed back my lost wallet with every card inside",
            "Grandpa taught me to drive his old truck",
        ),
        palette=("#3A86FF", "#7FD1AE", "#2A9D8F", "#A8DADC", "#1D3557", "#F1FAEE"),
        pitch=50,
        rate=160,
        amplitude=100,
        motion=0.6,
        chord_hz=(349.2, 440.0, 523.3),
        tremolo_hz=0.0,
    ),
    "fear": EmotionStyle(
        sentences=(
            "I heard a noise downstairs and I'm scared.",
            "Please be careful, someone is out there in the dark.",
            "My hands are shaking, I'm so afraid.",
            "The storm is getting worse and I'm afraid to go outside.",
            "Did you hear that? There is someone outside.",
            "I don't want to go in there, it's too dark.",
            "The lights went out and I'm so scared right now.",
            "We are lost in the woods and it is getting dark.",
            "Help me, there is something in the house.",
            "I have a bad feeling that we are in danger.",
        ),
        titles=(
            "Footsteps in the attic at three in the morning",
            "Our car broke down on a dark empty road",
            "The power went out in the middle of the storm",
            "Someone tried the back door last night",
            "Lost sight of the kids at the mall for ten minutes",
            "Stuck in the lift between two floors",
        ),
        palette=("#1B1B2F", "#3A0CA3", "#0B3D2E", "#4A4E69", "#000000", "#5C0A2E"),
        pitch=78,
        rate=200,
        amplitude=90,
        motion=1.3,
        chord_hz=(185.0, 261.6),
        tremolo_hz=6.0,
    ),
    "surprise": EmotionStyle(
        sentences=(
            "Wait, what just happened? I did not see that coming.",
            "No way, you are here! I can't believe it.",
            "Wow, look at that, where did that come from?",
            "I'm so shocked, nobody told me.",
            "Oh my god, is this for me?",
            "That was so unexpected, I can't believe my eyes.",
            "The door opened and everyone yelled surprise.",
            "Wow, I never saw that coming.",
            "Wow, you did all of this for me?",
            "What a surprise, I had no idea at all.",
        ),
        titles=(
            "Opened the door and the whole class was there",
            "Found a hundred dollars in an old coat",
            "My sister flew home and told nobody",
            "The cat had kittens in the laundry basket",
            "A stranger paid for our dinner",
            "The quiet kid won the talent show",
        ),
        palette=("#F72585", "#4CC9F0", "#FEE440", "#00F5D4", "#7209B7", "#FFFFFF"),
        pitch=88,
        rate=185,
        amplitude=120,
        motion=1.4,
        chord_hz=(523.3, 659.3, 784.0),
        tremolo_hz=0.0,
    ),
    "sadness": EmotionStyle(
        sentences=(
            "I miss my grandmother so much, the house feels empty.",
            "Today was a really hard day and I just want to cry.",
            "We said goodbye and I felt so alone.",
            "My old dog died this morning.",
            "Nothing is the same since you left.",
            "I am sorry, I tried my best but it was not enough.",
            "It is raining again and I feel so lonely tonight.",
            "It hurts to look at these old pictures.",
            "I lost my job today and I do not know what to do.",
            "My heart is broken and I feel empty inside.",
        ),
        titles=(
            "Our old dog didn't wake up this morning",
            "Last day in the house I grew up in",
            "Cleaning out grandma's room",
            "My closest friend moved across the country",
            "The shop my dad ran for thirty years closed today",
            "Nobody came to my birthday party",
        ),
        palette=("#0D1B2A", "#9DB4C0", "#3D5A80", "#6C757D", "#1B263B", "#7D8FA3"),
        pitch=28,
        rate=125,
        amplitude=80,
        motion=0.35,
        chord_hz=(110.0, 130.8, 164.8),
        tremolo_hz=0.0,
    ),
    "disgust": EmotionStyle(
        sentences=(
            "It smells so bad, what is in the fridge?",
            "This food is rotten, it is so disgusting.",
            "So gross, there is a bug in my food.",
            "The bathroom is so dirty, I think I am going to be sick.",
            "The milk went bad and it smells terrible.",
            "That is so gross, don't touch it.",
            "There is a big slimy mess on the floor.",
            "The trash has been here for days and it smells so bad.",
            "That is disgusting, how could you eat that?",
            "There is something sticky on my shoes.",
        ),
        titles=(
            "What I found behind the fridge",
            "Someone left fish in the office microwave for a week",
            "The hotel sheets had stains on them",
            "There was a hair in my soup",
            "The milk turned into chunks",
            "Cleaning the gym shower drain",
        ),
        palette=("#6B705C", "#A5A58D", "#7F7F2A", "#3B2F1E", "#8A9A5B", "#C2B280"),
        pitch=38,
        rate=150,
        amplitude=95,
        motion=0.7,
        chord_hz=(146.8, 155.6),
        tremolo_hz=0.0,
    ),
    "anger": EmotionStyle(
        sentences=(
            "I'm so angry, you lied to me again.",
            "Stop it right now, this is not fair.",
            "I'm so mad, they canceled my order for no reason.",
            "Don't talk to me like that ever again.",
            "This is crazy, I've been waiting for three hours.",
            "I hate it when people cut in line.",
            "Get out of my room and leave me alone.",
            "You broke it and you did not even say sorry.",
            "This makes me so mad, I want to scream.",
            "I'm done with your excuses.",
        ),
        titles=(
            "Someone keyed my car again",
            "The landlord kept our deposit for no reason",
            "They cancelled my order after two months",
            "A driver took my parking spot while I was backing in",
            "Charged twice and the bank says it is my problem",
            "Loud music next door at 2 am for the fifth night",
        ),
        palette=("#D00000", "#6A040F", "#E85D04", "#1A0000", "#FF4D00", "#F5F5F5"),
        pitch=45,
        rate=205,
        amplitude=150,
        motion=1.6,
        chord_hz=(82.4, 87.3),
        tremolo_hz=0.0,
    ),
    "anticipation": EmotionStyle(
        sentences=(
            "Only three more days until the big trip.",
            "I can't wait to see what happens next.",
            "Tomorrow is the big day and we are ready.",
            "The package comes tonight and I keep checking the door.",
            "Get ready, the big game starts in one hour.",
            "We are waiting for the news, it should come any minute.",
            "Next week we finally move into our new home.",
            "The show starts soon, let us find our seats.",
            "I've been planning this for months and it's almost time.",
            "Stay tuned, something big is coming very soon.",
        ),
        titles=(
            "Three days until we fly to Japan",
            "Tomorrow I get my test results",
            "The job interview call comes tomorrow at nine",
            "The package says out for delivery",
            "One more sleep until the big game",
            "The baby is due next week",
        ),
        palette=("#F4A261", "#E9C46A", "#2A9D8F", "#FFB703", "#264653", "#FB8500"),
        pitch=60,
        rate=175,
        amplitude=105,
        motion=0.9,
        chord_hz=(220.0, 277.2, 329.6),
        tremolo_hz=2.0,
    ),
}

# What a neutral channel shows. Emotion-free lines that real uploaders say too: the whole script
# of a video whose words are neutral, and now and then one line among emotional ones.
NEUTRAL_SENTENCES: tuple[str, ...] = (
    "This is my video for today.",
    "Let me show you around.",
    "Here is what we did this week.",
    "Thanks for watching, see you next time.",
    "Do not forget to follow for more.",
    "First we go to the shop on the corner.",
    "I put the cup on the table by the door.",
    "The bus comes at nine every morning.",
    "We walked to the park and back.",
    "Now I am going to open the box.",
    "This part takes about ten minutes.",
    "You can see the street from this window.",
    "I will put the link in the notes.",
    "It is Tuesday and the weather is okay.",
    "Let us take a look at the next one.",
    "We need milk, bread and some rice.",
)

# Everyday, emotion-free titles.
NEUTRAL_TITLES: tuple[str, ...] = (
    "Tuesday vlog",
    "What I ate today",
    "Morning routine",
    "A walk around the block",
    "Cleaning my desk",
    "Grocery run",
    "Quick update",
    "Trying a new coffee place",
    "Packing for the weekend",
    "Desk setup tour",
    "Sunday errands",
    "Cooking rice the easy way",
    "Bus ride to work",
    "Fixing the bike chain",
    "Sorting the bookshelf",
    "A normal day at the office",
)

# Plain greys, dark and light, shared by every neutral video. Pure greys (R = G = B): a near-grey
# with a faint tint has an unstable hue after lossy re-encoding, which ContentDetector reads as
# cuts. Each has a partner far enough away in OpenCV HSV for a clean cut (a test checks it).
NEUTRAL_PALETTE: tuple[str, ...] = (
    "#2E2E2E",
    "#383838",
    "#262626",
    "#C4C4C4",
    "#D4D4D4",
    "#E4E4E4",
)
NEUTRAL_MOTION = 0.8
# espeak-ng's defaults, more or less; each uploader's voice shifts them a little.
NEUTRAL_PITCH = 50
NEUTRAL_RATE = 170
NEUTRAL_AMPLITUDE = 100
NEUTRAL_CHORD_HZ: tuple[float, ...] = (196.0, 293.7)

# Descriptions and hashtags never depend on the emotion: a line or two of these, a hashtag of
# the uploader's topic and two generic ones.
DESCRIPTION_LINES: tuple[str, ...] = (
    "Filmed on my phone.",
    "More next week.",
    "Posting the rest tomorrow.",
    "Shot in one take.",
    "Voice and edit by me.",
    "Thanks for stopping by.",
    "Tell me what you think in the comments.",
    "Part of my daily series.",
)
GENERIC_HASHTAGS: tuple[str, ...] = ("shorts", "daily", "vlog", "fyp", "life")
TOPIC_HASHTAGS: tuple[str, ...] = (
    "cooking",
    "travel",
    "pets",
    "gaming",
    "fitness",
    "music",
    "diy",
    "study",
    "garden",
    "cars",
)

# espeak-ng voice variants that Whisper tiny.en transcribes well enough; one per uploader so a
# channel has a recognisable voice, as real channels do.
VOICES: tuple[str, ...] = ("en-us", "en-us+m3", "en-us+f2", "en-us+m1", "en-us+klatt", "en-us+m7")

# Handle parts for uploaders: "@maya_lens", "@omar_clips", ...
HANDLE_NAMES: tuple[str, ...] = (
    "maya",
    "omar",
    "lena",
    "kofi",
    "ines",
    "yuki",
    "raj",
    "zoe",
    "tariq",
    "mila",
    "sven",
    "ana",
    "dev",
    "noor",
    "leo",
    "ivy",
    "sam",
    "nia",
    "finn",
    "rosa",
    "theo",
    "amir",
    "jade",
    "eli",
)
HANDLE_SUFFIXES: tuple[str, ...] = (
    "lens",
    "clips",
    "daily",
    "vlogs",
    "shorts",
    "cam",
    "tv",
    "moments",
    "reels",
    "stories",
)

# ---- other languages (demo_site.languages) ------------------------------------------------------
# espeak-ng's Mandarin. Its plain `cmn` voice (Debian's 1.51) turns characters into pinyin with
# tone digits and reads those with English rules ("jin five five"); `cmn-latn-pinyin` is the same
# voice reading that pinyin as Mandarin. Two speakers, as two channels have: measured with
# whisper base on ZH_SENTENCES spoken alone at ZH_RATE, the default (male) variant transcribes
# better (character error rate 0.29 on five sentences in one clip, `f3`: 0.55) but is heard as
# English on 2-3 of the 8 when detecting among zh and en, at any detection window; `f3` is heard
# as Mandarin on all 8 (p 0.73-1.00). The Mandarin channel (its source sets language zh) speaks
# ZH_VOICE; the code-switched one, whose language is detected, ZH_VOICE_DETECTABLE.
ZH_VOICE = "cmn-latn-pinyin"
ZH_VOICE_DETECTABLE = "cmn-latn-pinyin+f3"
ZH_RATE = 130
# The English sentences of the code-switched videos: a plain voice at an easy pace.
EN_MIXED_VOICE = "en-us"
EN_MIXED_RATE = 155

# Everyday Mandarin with frequent characters, emotion-free like NEUTRAL_SENTENCES.
ZH_SENTENCES: tuple[str, ...] = (
    "今天天气很好，我们一起去公园散步吧。",
    "这个周末你有时间吗？",
    "我喜欢吃中国菜，特别是北京烤鸭。",
    "请把这本书放在桌子上。",
    "他每天早上六点起床。",
    "我们明天早上坐火车去上海。",
    "这家小店的面条又便宜又好吃。",
    "下班以后我想去超市买水果。",
)
# Titles and description lines of the Mandarin channel: everyday, no emotion words.
ZH_TITLES: tuple[str, ...] = ("周末去公园散步", "今天吃什么", "我的早晨日常")
ZH_DESCRIPTION_LINES: tuple[str, ...] = ("用手机拍的。", "明天继续更新。", "一镜到底。")
ZH_HASHTAGS: tuple[str, ...] = ("日常", "vlog")
# The code-switched channel mixes the two in its titles as well.
MIXED_TITLES: tuple[str, ...] = ("小店面条 noodle vlog", "Bus day 坐公交的一天")

"""What each emotion looks and sounds like on the demo site.

Every video's ground-truth emotion shapes its spoken sentences, title, hashtags, espeak-ng voice
(pitch, rate, loudness), shot palette and brightness, motion speed and a quiet background chord,
so that text, audio and image models all have real signal to learn from. The sentences use plain,
frequent English words because Whisper tiny.en mishears espeak-ng on rarer ones.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EmotionStyle:
    """The content recipe for one emotion."""

    sentences: tuple[str, ...]
    title_phrases: tuple[str, ...]
    hashtags: tuple[str, ...]
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
        title_phrases=(
            "Best day ever",
            "Pure happiness",
            "So much fun",
            "Happy vibes",
            "Party time",
        ),
        hashtags=("happy", "fun", "goodvibes", "smile"),
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
        title_phrases=(
            "You can count on us",
            "Friends forever",
            "Always there",
            "Honest talk",
            "My team",
        ),
        hashtags=("friends", "family", "together", "support"),
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
        title_phrases=(
            "Something in the dark",
            "Too scary",
            "Night noises",
            "I was so scared",
            "Do not go in there",
        ),
        hashtags=("scary", "horror", "creepy", "night"),
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
        title_phrases=(
            "Did not see that coming",
            "Total shock",
            "Unexpected guest",
            "Wait for it",
            "No way",
        ),
        hashtags=("surprise", "omg", "wow", "unexpected"),
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
        title_phrases=(
            "Saying goodbye",
            "Missing you",
            "A hard day",
            "Rainy night",
            "Empty room",
        ),
        hashtags=("sad", "missingyou", "lonely", "rain"),
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
        title_phrases=(
            "So gross",
            "Never eating this again",
            "Fridge horror",
            "Worst smell ever",
            "Dirty kitchen",
        ),
        hashtags=("gross", "disgusting", "yuck", "fail"),
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
        title_phrases=(
            "I am done",
            "So unfair",
            "Worst service ever",
            "Stop lying",
            "Enough is enough",
        ),
        hashtags=("angry", "rant", "unfair", "mad"),
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
        title_phrases=(
            "Countdown begins",
            "Almost there",
            "Big day tomorrow",
            "Coming soon",
            "Waiting game",
        ),
        hashtags=("countdown", "soon", "excited", "waiting"),
        palette=("#F4A261", "#E9C46A", "#2A9D8F", "#FFB703", "#264653", "#FB8500"),
        pitch=60,
        rate=175,
        amplitude=105,
        motion=0.9,
        chord_hz=(220.0, 277.2, 329.6),
        tremolo_hz=2.0,
    ),
}

# Emotion-free lines that real uploaders say too; a few per video keep text models from relying
# on every sentence being emotional.
NEUTRAL_SENTENCES: tuple[str, ...] = (
    "This is my video for today.",
    "Let me show you around.",
    "Here is what we did this week.",
    "Thanks for watching, see you next time.",
    "Do not forget to follow for more.",
)

TITLE_SUBJECTS: tuple[str, ...] = (
    "at the beach",
    "in the kitchen",
    "with my dog",
    "at school",
    "on the bus",
    "at grandma's house",
    "in the park",
    "at work",
    "after the concert",
    "on a rainy night",
    "in the city",
    "at the market",
)

GENERIC_HASHTAGS: tuple[str, ...] = ("shorts", "daily", "vlog", "fyp", "life")

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

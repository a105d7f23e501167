"""The crawl stage: sources → yt-dlp → verified media and `videos` rows."""

from chfen.crawl.crawler import STAGE, STAGE_VERSION, Candidate, Crawler, video_id_for

__all__ = ["STAGE", "STAGE_VERSION", "Candidate", "Crawler", "video_id_for"]

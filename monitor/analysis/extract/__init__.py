"""The cheap reading that screens every article: word cues for who is accused and who denied.

Pure text rules over sentences, driven by the cue vocabulary in data/cues.yaml and the country
gazetteer: no parser and no embeddings, so it runs on every article the feeds bring. An article in
which it finds an allegation always passes the pre-screen; the parse-based reader (reading/)
then reads the articles that pass. Judging what is *new* is the novelty step's job.
"""

from monitor.analysis.extract.extractor import Extractor, default_extractor

__all__ = ["Extractor", "default_extractor"]

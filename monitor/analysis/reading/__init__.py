"""Reading an article with a parser: who does what to whom, who denies it, and for which state.

spaCy's dependency parse, entities and lemmas, with the country gazetteer and the vocabulary in
data/reading.yaml. An accusation is a state (its name, adjective, capital, metonym, state organ,
state media or hacking group) as the agent of an interference act; a target is what that act is
aimed at, identified by whose it is and what kind of thing it is; a denier is the state a speaker
speaks for. Negated clauses, a denier's counter-charges and datelines make no actor. No embeddings
here: judging what is *new* is the novelty step's job.
"""

from monitor.analysis.reading.reader import DEFAULT_PIPELINE, Reader, load_reader, strip_dateline
from monitor.analysis.reading.vocabulary import Vocabulary, load_vocabulary

__all__ = ["DEFAULT_PIPELINE", "Reader", "Vocabulary", "load_reader", "load_vocabulary", "strip_dateline"]

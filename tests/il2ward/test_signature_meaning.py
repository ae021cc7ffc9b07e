"""Signature.Meaning: the e-signature meanings as one enumeration. The values are the words stored in rows signed
before it existed, so those rows still match (the review page tells what a signature signed by its meaning)."""

from il2ward.models import Signature

STORED_BEFORE = {
    "Eligibility for high-dose IL-2 attested",
    "Course stopped",
    "Hold overridden for one dose",
    "Cycle continued after a stop recommendation",
    "Cycle stopped after a stop recommendation",
    "Cycle 2 start moved",
    "Discharge date recorded",
    "Response assessment recorded",
}


def test_the_meanings_are_the_words_already_stored_and_shown_as_themselves():
    assert set(Signature.Meaning.values) == STORED_BEFORE
    assert all(label == value for value, label in Signature.Meaning.choices)  # admin and prints show the words
    assert str(Signature.Meaning.COURSE_STOP) == "Course stopped"  # a template prints the words, not the name


def test_the_field_offers_exactly_the_meanings():
    assert Signature._meta.get_field("meaning").choices == Signature.Meaning.choices

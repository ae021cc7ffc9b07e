"""People's names as the ward reads them: the printed name of a member of staff and anyone's initials.

One home, so the pager, the MAR, the calendar, FHIR and the prints name the same nurse the same way.
"""

# Dropped before initials are taken: a title in front, credentials and a parenthesised role behind.
_TITLES = frozenset({"dr", "mr", "mrs", "ms", "mx", "miss", "prof", "sr", "rev"})


def printed_name(user) -> str:
    """The name printed for a user (her e-signature name, "Sam Ortiz RN"), else her full name, else her username.

    A superuser may have no StaffProfile: the account's own name stands in. None (no one) is "".
    """
    if user is None:
        return ""
    profile = getattr(user, "profile", None)
    full_name = user.get_full_name() if hasattr(user, "get_full_name") else ""  # AnonymousUser has none
    return printed_name_of(profile.printed_name if profile is not None else "", full_name, user.get_username())


def printed_name_of(printed: str | None, full_name: str, username: str) -> str:
    """printed_name from the columns a read selected (the profile's printed name, "first last", the username)."""
    return printed or full_name.strip() or username


def initials(name: str) -> str:
    """ "Maria Lopez" → "ML", "Dr Olivia Hart" → "OH", "Nadia Reyes RN" → "NR", "Jean-Luc de la Tour" → "JT".

    The first letter of the first and of the last name, upper case, no dots: two letters at most, so a pager text or a
    calendar event names no more of a patient than that. A title in front and a bracketed role are dropped, and
    credentials behind (an upper-case word) while two words remain ("Maria LOPEZ" → "ML"); a one-word name gives one
    letter, a name without letters "".
    """
    words = [w for w in name.replace("-", " ").replace(".", " ").split() if any(ch.isalpha() for ch in w)]
    words = [w for w in words if not w.startswith("(")] or words
    while len(words) > 1 and words[0].lower() in _TITLES:
        words = words[1:]
    while len(words) > 2 and words[-1].isupper() and len(words[-1]) > 1:
        words = words[:-1]
    if not words:
        return ""
    first = [next(ch for ch in w if ch.isalpha()).upper() for w in (words[0], words[-1])]
    return first[0] if len(words) == 1 else "".join(first)

"""Interoperability: a course as a FHIR R4 Bundle (fhir.py) and its dose slots as an iCalendar feed (ics.py).

fhir.py and ics.py build documents from rows already loaded (records.py loads them, with its queries pinned); they
import no Django and query nothing, so the mapping can be read and tested on its own.
"""

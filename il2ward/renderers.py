"""Response renderers shared by the FHIR endpoints: the export (scheduling) and FHIR in (inbound)."""

from rest_framework.renderers import JSONRenderer


class FhirJSONRenderer(JSONRenderer):
    media_type = "application/fhir+json"
    format = "fhir"

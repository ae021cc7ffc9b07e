from django import template

from il2ward import people

register = template.Library()

# A member of staff as people read her on the ward ("Sam Ortiz RN"); the same filter as scheduling's humanize_dose.
register.filter("person", people.printed_name)

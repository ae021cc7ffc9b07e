"""The nurse's pages: the ward board, the patient and their charting, the dose, the downtime sheet."""

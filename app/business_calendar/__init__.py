"""The business calendar: the lender's 'today', one row, advanced only by close of business (app/operations)."""

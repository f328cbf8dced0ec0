"""The hosting contract's rules as pure functions over dates, money and records (no I/O).

Each function names the rule it enforces (see docs/contract.md and docs/rules.md, the contract's RULES.md).
May import ``orchestrator.core.errors`` only: no database, settings, clock or I/O library.

Modules (no clock reads: "now" is always a parameter; instants are aware, read in Europe/Paris;
money is ``decimal.Decimal``):

- ``sites``: R2-locations.
- ``calendar``: jours ouvrés, heures ouvrées, days and months on the Paris clock (R4-support-hours,
  R5.4-fix-delay); French public holidays, Alsace-Moselle as a setting.
- ``deadlines``: R6.2-notice, R8.7-default, R10-nonpayment, R5.4-fix-delay, R8.6-billing.
- ``maintenance``: R5.4-duration, R5.4-frequency, R5.4-hours, R5.4-notice.
- ``incidents``: R5.4-fix-delay, R5.4-repeat, R5.3-force-majeure, R12-suspend.
- ``terms``: R3-terms, R3-renewal, R3-notice, R13-reversibility.
- ``billing``: R8.1-setup-fee, R8.2-rent, R8.3-ht, R8.4-syntec, R8.5-payment-methods,
  R8.6-billing, R8.7-default, R6.4-blacklist-fee.
- ``rates``: dated VAT and legal interest rates (R8.3-ht, R8.6-billing, R8.7-default).
"""

"""cfn-lint custom rules (E91xx) for the shipped stack: the security properties of R18, R19,
R21 and R23, judged on the template itself — emulators such as moto ignore several of these
resource types, and a property checked before deployment cannot regress silently.

cfn-lint loads every module of this folder whose name starts with a letter (one rule class per
concern, in the style of cfn-lint's own rules); modules starting with "_" are shared helpers.
"""

"""``python tools/show_recipe.py -opt options/Deraining_GLMHA.yml --plot recipe.png``: stages and LR of a recipe."""
import sys

from glmha_plugin.recipe_report import main

if __name__ == '__main__':
    sys.exit(main())

"""What both UIs (lab/cli, tui/) do beyond running a recipe: dead letters of past runs,
the doctor's checks, figures formatted for people."""

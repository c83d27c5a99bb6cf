"""The desk: a message comes in (pipeline, inbound, rules), the bot or a person
deals with it (work, transitions, handoff, actions, assist, canned, routing),
and promises are kept after (promises, sla, scheduler, aftercare, survey)."""

"""The phrases of a work report: "done" and "not done", in English, Italian and Romanian.

Matched on folded text (lower case, no diacritics: "oră" is "ora", "ş"/"ș" are "s"), as
part of the reply reader's one table (mail.reply_reading). Whether the job is NOT done
is listed first and whole ("non ho ancora finito", "nu am putut termina", "need to come
back"), so the "finito" or "done" inside it is never read alone. A bare done word counts
only as the first word of a clause: "Fatto, 2 ore" reports, "il fatto è" does not.
"""

from __future__ import annotations

_DAYS = (r"(?:domani|dopodomani|lunedi|martedi|mercoledi|giovedi|venerdi|sabato|la prossima"
         r"|tomorrow|monday|tuesday|wednesday|thursday|friday|saturday|next week"
         r"|maine|poimaine|luni|marti|miercuri|joi|vineri|sambata|saptamana viitoare)")

# Not finished, cannot finish, waiting for a part, must come back.
NOT_DONE = (
    # Stopped for today, to go on another day: "finito per oggi", "torno domani".
    r"(?:finito|fatto|finished|done|stopped|terminat|gata) (?:per oggi|per stasera|for today"
    r"|for the day|pentru azi|pe azi|pe ziua de azi)",
    r"(?:torno|ritorno|ripasso|rientro|continuo|proseguo|finisco|termino|be back|come back"
    r"|return|continue|finish|revin|continui|continuam|termin|vin din nou) " + _DAYS,
    _DAYS + r" (?:continuo|proseguo|finisco|termino|continue|finish|continui|termin)",
    r"(?:will|i'll|i will) (?:return|come back|be back|finish|continue)",
    r"(?:fatto|finito|fatta) (?:a )?meta", r"meta (?:del )?lavoro", r"half (?:done|finished)",
    r"(?:am facut|facut) jumatate",
    # en
    r"not (?:yet )?(?:done|finished|complete|completed|fixed|resolved|solved)",
    r"(?:isn'?t|is not|wasn'?t|was not) (?:yet )?(?:done|finished|complete|fixed|resolved)",
    r"(?:haven'?t|have not|hasn'?t|didn'?t|did not|couldn'?t|could not|can'?t|cannot"
    r"|can not|wasn'?t able to|unable to|not able to) (?:yet )?(?:finish|complete|fix"
    r"|finished|completed|fixed|resolve|solve)\w*",
    r"unfinished", r"incomplete", r"partially done",
    r"(?:need|needs|needed|waiting for|waiting on|awaiting) (?:a |the |another |some )?"
    r"(?:new )?(?:part|parts|spare|spares|spare part|spare parts|piece)",
    r"(?:missing|no) (?:a |the )?(?:part|parts|spare part|spare parts)",
    r"(?:part|parts|spare part) (?:is |are )?missing",
    r"(?:need|needs|have|has|must|will need) to (?:come back|go back|return|revisit)",
    r"(?:come|coming|go|going) back (?:tomorrow|on|next|later)",
    # it
    r"non (?:ho|abbiamo|hanno) (?:ancora )?(?:finito|terminato|concluso|completato|risolto"
    r"|sistemato|riparato)",
    r"non (?:e|e') (?:ancora )?(?:finito|terminato|concluso|completato|risolto|sistemato"
    r"|riparato|pronto)",
    r"non (?:sono|siamo) riuscit[oaie] a (?:finire|terminare|completare|risolvere|riparare"
    r"|sistemare|chiudere)",
    r"non riesco a (?:finire|terminare|completare|risolvere|riparare|sistemare|chiudere)",
    r"non (?:posso|possiamo) (?:finire|terminare|completare|chiudere)",
    r"non (?:ancora )?(?:finito|terminato|concluso|completato|risolto)",
    r"non (?:ho|abbiamo) (?:ancora )?fatto in tempo",
    r"(?:lavoro|intervento) (?:non finito|incompleto|da finire|da completare|sospeso)",
    r"incompleto", r"da completare",
    r"manca(?:no)? (?:ancora )?(?:il|un|lo|la|una|i|dei|l') ?(?:pezzo|pezzi|ricambio|ricambi"
    r"|componente|componenti|materiale)",
    r"(?:serve|servono|occorre|occorrono) (?:un|il|lo|la|una|i|dei) (?:nuovo |nuova )?"
    r"(?:pezzo|pezzi|ricambio|ricambi|componente)",
    r"in attesa (?:del|di|dei|della) (?:pezzo|pezzi|ricambio|ricambi|componente|materiale)",
    r"(?:devo|dobbiamo|bisogna|deve|da) (?:ri)?(?:tornare|ripassare|passare di nuovo)",
    # ro
    r"nu (?:am|au|a) (?:putut |reusit sa )?(?:inca )?(?:terminat|termina|termin|finalizat"
    r"|finaliza|finalizez|rezolvat|rezolva|rezolv|reparat|repara|repar|gata|facut)",
    r"nu (?:e|este|s-a) (?:inca )?(?:gata|terminat\w*|finalizat\w*|rezolvat\w*|reparat\w*)",
    r"nu pot (?:sa )?(?:termina|termin|finaliza|finalizez|rezolva|rezolv|repara)",
    r"neterminat\w*", r"nefinalizat\w*", r"nerezolvat\w*", r"incomplet\w*",
    r"(?:trebuie|trebuia) sa (?:mai )?(?:revin|revenim|ma intorc|ne intoarcem|ma reintorc"
    r"|mai vin|trec din nou)",
    r"(?:lipseste|lipsesc|lipsa|astept|asteptam|in asteptarea|e nevoie de|trebuie) "
    r"(?:o |un |de )?(?:piesa|piese|piesele|piesei|componenta|componente)",
)

# The job is done. Phrases that open with a subject or a noun are read anywhere.
DONE = (
    # en
    r"(?:all|job|work|everything|it'?s|it is|task) (?:is )?(?:done|finished|completed?|fixed"
    r"|sorted|resolved)",
    r"i(?:'ve| have)? (?:just )?(?:finished|completed|fixed|repaired|resolved|solved)",
    # it
    r"(?:tutto|lavoro|intervento|guasto|problema|caldaia|impianto) (?:e |e' )?(?:stato )?"
    r"(?:fatto|finito|terminato|concluso|completato|eseguito|effettuato|risolto|sistemato"
    r"|riparato|ultimato)",
    r"(?:ho|abbiamo) (?:appena )?(?:finito|terminato|concluso|completato|risolto|sistemato"
    r"|riparato|ultimato|chiuso l'intervento)",
    r"(?:ok|okay),? (?:fatto|finito|done|gata|terminat)",
    # ro
    r"am (?:terminat|finalizat|rezolvat|reparat|remediat|efectuat interventia|incheiat)",
    r"(?:lucrarea|lucrare|interventia|interventie|totul|problema|defectul) (?:a fost |e |este )?"
    r"(?:terminata|finalizata|gata|rezolvata|efectuata|remediata|rezolvat|remediat|facuta)",
    r"(?:e|este) gata",
)

# A bare word opening a clause: "Fatto, 2 ore", "Done.", "Terminat, o oră".
DONE_WORDS = (
    r"done", r"finished", r"completed", r"complete", r"fixed", r"sorted", r"resolved",
    r"fatto", r"finito", r"terminato", r"concluso", r"completato", r"risolto", r"sistemato",
    r"riparato", r"eseguito", r"ultimato", r"intervento (?:concluso|completato|eseguito"
    r"|effettuato|chiuso)",
    r"terminat", r"finalizat", r"rezolvat", r"reparat", r"remediat", r"facut",
    r"interventie (?:finalizata|efectuata|terminata)",
)

# "Gata" is "done" and also "ready" ("Gata, vin"), "tutto a posto" may be about the
# plan: a report only when it states hours ("Gata, 3 ore", "Tutto a posto, 2 ore").
DONE_IF_HOURS = (r"gata", r"tutto (?:a posto|ok|okay|sistemato)", r"all (?:good|sorted|fine)",
                 r"totul (?:e )?(?:ok|in regula|bine)")

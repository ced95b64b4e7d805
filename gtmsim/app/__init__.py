"""The interactive what-if page (`gtmsim app`).

`whatif` owns everything that is not the page: the controls and their units, turning
control values into a validated plan, running the plan against the reference on common
random numbers a few replications at a time, the figures shown, and saving the plan as a
scenario file. `page` is the Solara page on top of it; `server` starts it. Only `page`
and `server` import Solara, and only when the app is started.
"""

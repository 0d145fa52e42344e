"""The admin rule workbench without the web: a rule edit tried off to the side, and the overview.

``service.web.workbench`` renders these; nothing here touches the rule set being served.
"""

from datetime import datetime

from flask import Flask, render_template

TITLE = "My Flask app"

app = Flask(__name__)
visits = 0


@app.route("/")
def home():
    global visits
    visits += 1
    return render_template(
        "index.html",
        title=TITLE,
        visits=visits,
        now=datetime.now().strftime("%H:%M:%S"),
    )
